# docker (the classic builder and BuildKit's dispatchExpose both use nat.ParsePortSpecs)
# exposes each port of a range: EXPOSE 8000-8002 gives 8000/tcp, 8001/tcp and 8002/tcp.
# buildah 1.28 keeps "8000-8002/tcp" as one key.
.ExposedPorts |= (del(.["8000-8002/tcp"]) + {"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}})
