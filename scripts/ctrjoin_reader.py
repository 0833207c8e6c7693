#!/usr/bin/python3
"""Reads ctrjoin's training output into PyTorch, with no TensorFlow and no
code of ctrjoin's beyond this file (sinks/README.md, "Reading the output").

    from ctrjoin_reader import load_schema, SampleDataset
    schema = load_schema("out/")                       # out/_schema.json
    data = SampleDataset("out/", featurize=my_fn)      # out/part-*.tfrecord[.gz]
    loader = torch.utils.data.DataLoader(data, batch_size=1024)

Each sample is a dict name -> value as tf.Example holds it: an int or a float
for a one-value int64_list or float_list, bytes for a one-value bytes_list,
a list otherwise. TFRecord CRCs are checked. JSON-lines parts (sink.format
json) are read too, as the same dicts. featurize(sample) -> (list of float,
label) turns a sample into a model's input.

Run as a script it trains a logistic regression on a directory and prints
its AUC (and, with --truth, the AUC of the true click probabilities):

    /usr/bin/python3 scripts/ctrjoin_reader.py out/ [--truth truth.jsonl]
"""

import argparse
import glob
import gzip
import json
import math
import os
import struct
import sys

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def _crc32c(data):
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecords(path, verify=True):
    """Yields the records of one TFRecord file (gzipped if it ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: a record header is cut short")
            length, length_crc = struct.unpack("<QI", header)
            if verify and _masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: bad length CRC")
            data = f.read(length)
            (data_crc,) = struct.unpack("<I", f.read(4))
            if verify and _masked_crc(data) != data_crc:
                raise ValueError(f"{path}: bad data CRC")
            yield data


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = buf[pos:pos + n]
            pos += n
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _feature(buf):
    """A tensorflow.Feature: a list of bytes, floats or int64s."""
    for kind, _, lst in _fields(buf):
        values = []
        for _, wire, v in _fields(lst):
            if kind == 1:
                values.append(bytes(v))
            elif kind == 2:
                if wire == 2:  # packed
                    values.extend(struct.unpack(f"<{len(v) // 4}f", v))
                else:
                    values.append(struct.unpack("<f", v)[0])
            elif kind == 3:
                if wire == 2:
                    p = 0
                    while p < len(v):
                        x, p = _varint(v, p)
                        values.append(_int64(x))
                else:
                    values.append(_int64(v))
        return values
    return []


def parse_example(data):
    """A serialized tensorflow.Example as a dict name -> value."""
    sample = {}
    for number, _, features in _fields(data):
        if number != 1:
            continue
        for _, _, entry in _fields(features):
            name, value = None, []
            for n, _, v in _fields(entry):
                if n == 1:
                    name = bytes(v).decode("utf-8")
                elif n == 2:
                    value = _feature(v)
            sample[name] = value[0] if len(value) == 1 else value
    return sample


def load_schema(directory):
    with open(os.path.join(directory, "_schema.json")) as f:
        return json.load(f)


def parts(directory):
    """The published parts, in order (staging and markers are outside the glob)."""
    return sorted(glob.glob(os.path.join(directory, "part-*")))


def samples(directory, verify=True):
    """Every sample of a directory's parts, as dicts."""
    for path in parts(directory):
        if ".tfrecord" in path:
            for record in tfrecords(path, verify):
                yield parse_example(record)
        else:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                for line in f:
                    s = json.loads(line)
                    s.update(s.pop("features", {}))
                    yield s


try:
    import torch
    from torch.utils.data import IterableDataset

    class SampleDataset(IterableDataset):
        """A directory's samples as (features tensor, label tensor) pairs."""

        def __init__(self, directory, featurize, verify=True):
            self.directory, self.featurize, self.verify = directory, featurize, verify

        def __iter__(self):
            for s in samples(self.directory, self.verify):
                x, y = self.featurize(s)
                yield torch.tensor(x, dtype=torch.float32), torch.tensor(float(y))
except ImportError:  # reading without PyTorch still works
    torch = None


def auc(scores, labels):
    """Area under the ROC curve (ties count half)."""
    pairs = sorted(zip(scores, labels))
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        ties_positive = sum(label for _, label in pairs[i:j])
        rank_sum += ties_positive * (i + j + 1) / 2
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


def _logit(p):
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


DEVICES = [b"ios", b"android", b"web"]


def workload_features(s):
    """Inputs for ctrjoin's synthetic workload (src/io/workload.h): position,
    device, ctx and the looked-up user.ctr_7d and item.popularity (as logits)."""
    device = s.get("device", b"")
    device = device.encode() if isinstance(device, str) else device
    ctx = s.get("ctx", [0.5, 0.5])
    x = [float(s.get("position", 0)), float(ctx[0]), float(ctx[1])]
    x += [1.0 if device == d else 0.0 for d in DEVICES]
    x += [_logit(s.get("user.ctr_7d", 0.03)), _logit(s.get("item.popularity", 0.5))]
    return x, int(s["label"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--truth", help="gen --truth-out: the true click probabilities")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--holdout", type=float, default=0.3, help="share held out for AUC")
    args = parser.parse_args()
    if torch is None:
        sys.exit("ctrjoin_reader: PyTorch is missing (Debian: apt-get install python3-torch)")
    schema = load_schema(args.directory)
    print(f"schema: {schema['format']}, {len(schema['fields'])} declared fields, "
          f"parts {schema['files']}: {len(parts(args.directory))}")
    data = list(samples(args.directory))
    # Split by event time: train on the earlier samples, measure on the later.
    data.sort(key=lambda s: (s["ts"], s["impression_id"]))
    split = int(len(data) * (1 - args.holdout))
    train, test = data[:split], data[split:]
    torch.manual_seed(7)
    xs = torch.tensor([workload_features(s)[0] for s in train])
    ys = torch.tensor([float(s["label"]) for s in train])
    mean, std = xs.mean(0), xs.std(0).clamp_min(1e-6)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset((xs - mean) / std, ys), batch_size=512, shuffle=True)
    model = torch.nn.Linear(xs.shape[1], 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(args.epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss_fn(model(xb).squeeze(1), yb).backward()
            optimizer.step()
    with torch.no_grad():
        xt = (torch.tensor([workload_features(s)[0] for s in test]) - mean) / std
        scores = model(xt).squeeze(1).tolist()
    labels = [int(s["label"]) for s in test]
    positives = sum(int(s["label"]) for s in data)
    print(f"samples: {len(data)} ({positives} positives, CTR {positives / len(data):.4f}); "
          f"trained on {len(train)}, tested on {len(test)}")
    print(f"AUC: {auc(scores, labels):.4f}")
    if args.truth:
        truth = {}
        with open(args.truth) as f:
            for line in f:
                t = json.loads(line)
                truth[t["impression_id"]] = t["p_click"]
        best = auc([truth[_text(s["impression_id"])] for s in test], labels)
        print(f"best AUC (true probabilities): {best:.4f}")


if __name__ == "__main__":
    main()
