{
  "targets": [
    {
      "target_name": "oneos_pipe",
      "sources": ["pipe.c", "as-user.c", "spawn.c", "net-ns.c"]
    }
  ]
}
