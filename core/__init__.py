"""The domain of saoy: pipeline stages, OCR, signing, registry, verification. Never imports grpc."""

import warnings

# pyHanko imports cryptography's DSA classes to recognise DSA signatures; cryptography warns at
# that import. saoy never signs with DSA, so the warning says nothing to a user of saoy.
warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"pyhanko\.")
