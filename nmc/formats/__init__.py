"""Number formats of each target: pure functions from values to what the hardware can store.

One module per target (``nmc.formats.loihi``); every width and range is read from the
:class:`~nmc.target.Target`, never hard-coded, so a variant target file changes the formats too.
The ``quantize`` pass and the backends share these functions, so both agree bit for bit.
"""
