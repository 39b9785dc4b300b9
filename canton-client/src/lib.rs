//! gRPC channel to a Canton node: TLS, bearer token, timeouts, retries, and Canton error decoding.
