"""Generated gRPC stubs of the saoy.v1 contract (built from the .proto files beside this)."""
