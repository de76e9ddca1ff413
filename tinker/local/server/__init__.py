"""The HTTP half of the local server: transport, routes, the engine and its durable state.

`app` runs store + engine + HTTP on threads; `http` is the transport and `routes` the
endpoints, which read bodies through `bodies` (formats) and `validation` (limits); `engine`
wires `sessions`, `runs` (training, ordered by `ordering`), `samplers` and `futures` (results
behind long polls); `store` and `checkpoint_files` keep what survives a restart, `data_lock`
keeps it to one server per data directory and `crash_points` lets tests kill it mid-save;
`settings` holds every default and limit. The numpy model is reached only through
`tinker.local.compute.backend`.
"""
