"""``livepages dev``: the development server.

- ``supervisor``: the process the command runs. It owns the listening socket, watches
  the project's files, runs the configured watchers, and starts, restarts and stops
  the app's process;
- ``child``: one app process. It imports and serves the app, re-renders open pages
  when templates change, and serves the error overlay when the app cannot import or
  start;
- ``mode``: what an ``App`` does differently in such a process;
- ``overlay``: the error overlay;
- ``watchers``: the watchers' commands (a CSS build, a bundle).

Nothing here is imported by ``import livepages`` except ``mode`` and ``overlay``.
"""
