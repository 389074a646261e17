"""The delivery core's vocabulary: batch types, keyed state, raw-record decoding, topic names.

Imports no stage and no worker: every layer above may use it.
"""
