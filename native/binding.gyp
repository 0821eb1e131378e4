{
  "targets": [
    {
      "target_name": "ledger_native",
      "sources": ["ledger_native.c"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
