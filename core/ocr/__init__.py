"""OCR: the engine interface and Tesseract, the ONNX, trueocr and cascade engines, a factory."""
