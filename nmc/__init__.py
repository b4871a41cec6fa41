"""nmc: a neuromorphic compiler.

Data flows one way: front end (``nmc.frontend``) -> IR (``nmc.ir``) -> passes (``nmc.passes``)
-> backend (``nmc.backend``) -> binary (``nmc.binary``) -> interpreter (``nmc.sim``).
"""

__version__ = "0.1.0"
