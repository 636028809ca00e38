"""The domain of saoy: pipeline stages, OCR, signing, registry, verification. Never imports grpc."""
