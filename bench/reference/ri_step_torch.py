#!/usr/bin/env python3
"""PyTorch eager reference for the RI training step (bench/results/ri-step-*.md).

A CLIP ViT vision tower written directly in torch (HF CLIPVisionModelWithProjection layout:
conv patch embedding without bias, class + position embeddings, pre-LN, N pre-LN blocks with
separate q/k/v/out projections and quick_gelu MLP, post-LN on the class token, projection
without bias). One RI step = teacher forwards of θ0 and θᵢ without gradients, the student
forward, the KL loss over the task heads, backward, AdamW. Random weights: timing only.

Used as a check only (never a dependency). Usage:
  python3 ri_step_torch.py [--batch 128] [--steps 3] [--threads 2] [--layers 12] [--width 768] [--device cuda] [--tf32]
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, w, heads, inter):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(w, eps=1e-5), nn.LayerNorm(w, eps=1e-5)
        self.q, self.k, self.v, self.o = (nn.Linear(w, w) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(w, inter), nn.Linear(inter, w)

    def forward(self, x):
        b, t, w = x.shape
        h = self.ln1(x)
        d = w // self.heads
        q, k, v = (p(h).view(b, t, self.heads, d).transpose(1, 2) for p in (self.q, self.k, self.v))
        a = torch.softmax((q * d ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, w))
        m = self.fc1(self.ln2(x))
        return x + self.fc2(m * torch.sigmoid(1.702 * m))


class Tower(nn.Module):
    def __init__(self, layers, w, heads, inter, patch, size, proj):
        super().__init__()
        g = size // patch
        self.patch = nn.Conv2d(3, w, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.randn(w) * 0.02)
        self.pos = nn.Parameter(torch.randn(g * g + 1, w) * 0.02)
        self.ln_pre, self.ln_post = nn.LayerNorm(w, eps=1e-5), nn.LayerNorm(w, eps=1e-5)
        self.blocks = nn.ModuleList(Block(w, heads, inter) for _ in range(layers))
        self.proj = nn.Linear(w, proj, bias=False)

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.pos
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        return self.proj(self.ln_post(x[:, 0]))


def probs(z, head, temperature=1.0):
    return torch.softmax(F.normalize(z, dim=-1) @ head.t() / temperature, dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    mk = lambda: Tower(a.layers, a.width, a.width // 64, 4 * a.width, 32, 224, 512).to(dev)
    pre, expert, student = mk(), mk(), mk()
    for m in (pre, expert):
        m.requires_grad_(False)
    heads = [F.normalize(torch.randn(a.classes, 512, device=dev), dim=-1) * 100 for _ in range(a.tasks)]
    opt = torch.optim.AdamW(student.parameters(), lr=1e-6, weight_decay=1e-4)
    px = torch.randn(a.batch, 3, 224, 224, device=dev)
    i, alpha = 0, 1.0

    def ri_step(student_only=False):
        if not student_only:
            with torch.no_grad():
                zp, ze = pre(px), expert(px)
                targets = [probs(ze if j == i else zp, h) for j, h in enumerate(heads)]
        else:
            targets = [torch.full((a.batch, a.classes), 1.0 / a.classes, device=dev) for _ in heads]
        z = student(px)
        loss = 0
        for j, h in enumerate(heads):
            kl = F.kl_div(torch.log_softmax(F.normalize(z, dim=-1) @ h.t(), -1), targets[j], reduction="batchmean")
            loss = loss + (kl if j == i else alpha / (a.tasks - 1) * kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    out = {"torch": torch.__version__, "threads": a.threads, "tf32": a.tf32, "batch": a.batch, "layers": a.layers, "width": a.width, "device": a.device}
    for name, student_only in (("student_step", True), ("ri_step", False)):
        for _ in range(a.warmup):
            ri_step(student_only)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            ri_step(student_only)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / a.steps
        out[name] = {"seconds_per_step": dt, "images_per_second": a.batch / dt}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
