"""The gRPC and HTTP front of saoy: servicers, interceptors, settings and the server factory."""
