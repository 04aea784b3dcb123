{
  "targets": [
    {
      "target_name": "oneos_pipe",
      "sources": ["napi-common.c", "pipe.c", "as-user.c", "spawn.c", "kill-relay.c", "kill-filter.c", "net-ns.c"]
    },
    {
      "target_name": "oneos-pidns",
      "type": "executable",
      "sources": ["pidns.c", "kill-filter.c"]
    }
  ]
}
