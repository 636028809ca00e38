"""Trust: PKI, signing, QR payloads, the transparency log, verification, key custody."""
