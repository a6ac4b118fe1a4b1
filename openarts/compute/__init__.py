"""Compute: where all user code runs (DESIGN principle 4).

- ``flavors``: the ModelArts flavor catalogue mapped onto this machine;
- ``engines``: the local Python environments jobs run in;
- ``capacity``: the machine as one pool, and strict-FIFO admission into it;
- ``executor``: the interface controllers are written against (``Executor``, ``LaunchSpec``, ...);
- ``local``: ``LocalExecutor``, jobs as local processes that outlive the server;
- ``runner``: the small parent process of each job that records its exit code.

Deliberately empty of imports: every job's runner is started as ``python -m openarts.compute.runner``,
which imports this package first, and should not pay for psutil and the rest. Import the submodules.
"""
