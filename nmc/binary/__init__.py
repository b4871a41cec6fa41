"""The self-contained compiled binary shared by backends (writers) and interpreters (readers)."""

from .format import FORMAT_VERSION, Binary, decode_binary, encode_binary, read_binary, write_binary

__all__ = ["Binary", "FORMAT_VERSION", "encode_binary", "decode_binary", "read_binary", "write_binary"]
