"""The HTTP half of the local server: transport, routes, the engine and its durable state.

`app` runs store + engine + HTTP on threads; `http` is the transport and `routes` the
endpoints; `engine` wires `sessions`, `runs` (training, ordered by `ordering`), `samplers` and
`futures` (results behind long polls); `store` and `checkpoint_files` keep what survives a
restart; `settings` holds every default. The numpy model is reached only through
`tinker.local.compute.backend`.
"""
