#!/usr/bin/env python3
"""Writes the bundled example zoo: a tiny CLIP-ViT-shaped pretrained model and four fine-tuned
experts as Hugging Face directories (config.json + model.safetensors).

Deterministic (Python's seeded Mersenne Twister, little-endian float32), stdlib only, so the
committed files can be regenerated bit for bit:  python3 examples/make_zoo.py
Each expert = base + a rank-2 task vector + small noise; experts 2 and 3 share part of their
task vector so that merging has interference to resolve. For RI (examples/ri.yml) it also writes
one classification head per expert (zoo/heads/head_K.safetensors: unit-norm rows `weight` [5, 32]
and `logit_scale` 100) and 64 unlabeled auxiliary images (zoo/aux.safetensors: `pixel_values`
[64, 3, 32, 32], N(0, 1) in normalised pixel space as the RI spec suggests for noise sources),
drawn from a second seeded generator so the model files do not change.
"""
import json
import os
import random
import struct

D, MLP, LAYERS, PATCH, POS = 64, 256, 2, 8, 17
HERE = os.path.dirname(os.path.abspath(__file__))


def tensor_specs():
    specs = [
        ("vision_model.embeddings.class_embedding", [D]),
        ("vision_model.embeddings.patch_embedding.weight", [D, 3, PATCH, PATCH]),
        ("vision_model.embeddings.position_embedding.weight", [POS, D]),
        ("vision_model.pre_layrnorm.weight", [D]),
        ("vision_model.pre_layrnorm.bias", [D]),
    ]
    for i in range(LAYERS):
        p = f"vision_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            specs += [(p + f"self_attn.{proj}.weight", [D, D]), (p + f"self_attn.{proj}.bias", [D])]
        specs += [
            (p + "layer_norm1.weight", [D]), (p + "layer_norm1.bias", [D]),
            (p + "mlp.fc1.weight", [MLP, D]), (p + "mlp.fc1.bias", [MLP]),
            (p + "mlp.fc2.weight", [D, MLP]), (p + "mlp.fc2.bias", [D]),
            (p + "layer_norm2.weight", [D]), (p + "layer_norm2.bias", [D]),
        ]
    specs += [("vision_model.post_layernorm.weight", [D]), ("vision_model.post_layernorm.bias", [D]),
              ("visual_projection.weight", [32, D])]
    return specs


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes) in file order."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for *_, data in tensors:
            f.write(data)


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def main():
    rng = random.Random(20261124)
    specs = tensor_specs()
    base = {}
    for name, shape in specs:
        if name.endswith("norm.weight") or name.endswith("layrnorm.weight") or "layer_norm" in name and name.endswith("weight"):
            base[name] = [1.0 + rng.gauss(0, 0.02) for _ in range(numel(shape))]
        else:
            base[name] = [rng.gauss(0, 0.05) for _ in range(numel(shape))]

    shared = {name: ([rng.gauss(0, 1) for _ in range(shape[0])], [rng.gauss(0, 1) for _ in range(numel(shape[1:]))])
              for name, shape in specs if len(shape) == 2}

    def expert(k):
        out = {}
        for name, shape in specs:
            v = list(base[name])
            if len(shape) == 2:
                rows, cols = shape[0], numel(shape[1:])
                for _ in range(2):
                    u = [rng.gauss(0, 1) for _ in range(rows)]
                    w = [rng.gauss(0, 1) for _ in range(cols)]
                    for r in range(rows):
                        for c in range(cols):
                            v[r * cols + c] += 0.004 * u[r] * w[c]
                if k in (2, 3):
                    u, w = shared[name]
                    for r in range(rows):
                        for c in range(cols):
                            v[r * cols + c] += 0.003 * u[r] * w[c]
            noise = 0.002 if len(shape) >= 2 else 0.001
            out[name] = [x + rng.gauss(0, noise) for x in v]
        return out

    config = {
        "architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model",
        "hidden_size": D, "intermediate_size": MLP, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
        "image_size": 32, "patch_size": PATCH, "num_channels": 3, "projection_dim": 32,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "torch_dtype": "float32",
    }
    models = {"base": base}
    for k in range(4):
        models[f"expert_{k}"] = expert(k)
    position_ids = struct.pack(f"<{POS}q", *range(POS))
    for model_name, values in models.items():
        d = os.path.join(HERE, "zoo", model_name)
        os.makedirs(d, exist_ok=True)
        tensors = [(n, "F32", s, f32(values[n])) for n, s in specs]
        tensors.insert(3, ("vision_model.embeddings.position_ids", "I64", [1, POS], position_ids))
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")

    ri = random.Random(20261125)
    heads = os.path.join(HERE, "zoo", "heads")
    os.makedirs(heads, exist_ok=True)
    classes, dim = 5, config["projection_dim"]
    for k in range(4):
        weight = []
        for _ in range(classes):
            row = [ri.gauss(0, 1) for _ in range(dim)]
            norm = sum(x * x for x in row) ** 0.5
            weight += [x / norm for x in row]
        write_safetensors(os.path.join(heads, f"head_{k}.safetensors"),
                          [("weight", "F32", [classes, dim], f32(weight)), ("logit_scale", "F32", [], f32([100.0]))])
    images, size = 64, config["image_size"]
    pixels = [ri.gauss(0, 1) for _ in range(images * 3 * size * size)]
    write_safetensors(os.path.join(HERE, "zoo", "aux.safetensors"), [("pixel_values", "F32", [images, 3, size, size], f32(pixels))])


if __name__ == "__main__":
    main()
