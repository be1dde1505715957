"""Read the scalars of a TensorBoard event-file directory with tensorboardX's own
protobuf records (no tensorboard package needed): {tag: [(step, value), ...]}."""
import struct
from pathlib import Path


def records(path):
    """The serialized Event records of one TFRecord file (length, crc, data, crc)."""
    data = Path(path).read_bytes()
    i = 0
    while i + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        yield data[i + 12:i + 12 + n]
        i += 12 + n + 4


def scalars(directory):
    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(Path(directory).glob("events.out.tfevents.*")):
        for raw in records(path):
            event = event_pb2.Event.FromString(raw)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out
