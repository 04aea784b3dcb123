{
  "targets": [
    {
      "target_name": "oneos_pipe",
      "sources": ["napi-common.c", "pipe.c", "as-user.c", "spawn.c", "net-ns.c"]
    }
  ]
}
