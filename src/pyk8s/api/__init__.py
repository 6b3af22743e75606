"""The object model: metadata, selectors, defaulting and validation per kind, patches, Status errors.

Objects are plain JSON-shaped dicts, exactly as they travel on the wire. No I/O happens here.
"""
