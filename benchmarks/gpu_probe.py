"""Probe: forward (sampling) and training-step throughput of the CIFAR DDPM UNet under precision,
memory-layout and compilation choices. Prints one line per variant (images/s)."""

import time

import torch

import collapsebench as cb

torch.backends.cudnn.benchmark = True
device = torch.device("cuda")
model = cb.make_model("ddpm")


def unet(channels_last: bool, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    net = model.build_network((3, 32, 32)).to(device, dtype)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def timed(fn, repeats: int = 5) -> float:
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def forward_variant(
    label: str, channels_last: bool, autocast: bool, dtype: torch.dtype, compiled: bool, tf32: bool
) -> None:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    net = unet(channels_last, dtype).eval()
    run = torch.compile(net) if compiled else net
    x = torch.randn(1000, 3, 32, 32, device=device, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    t = torch.full((1000,), 500, device=device)

    def step() -> None:
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            run(x, t)

    started = time.perf_counter()
    seconds = timed(step)
    total = time.perf_counter() - started
    print(
        f"forward {label:40s} {1000 / seconds:9.0f} images/s  (with warm-up/compile {total:.0f} s)",
        flush=True,
    )


def train_variant(label: str, channels_last: bool, autocast: bool, compiled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    net = unet(channels_last).train()
    run = torch.compile(net) if compiled else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(128, 3, 32, 32, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    t = torch.randint(0, 1000, (128,), device=device)

    def step() -> None:
        with torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            loss = torch.nn.functional.mse_loss(run(x, t).float(), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    started = time.perf_counter()
    seconds = timed(step, repeats=20)
    total = time.perf_counter() - started
    print(
        f"train   {label:40s} {128 / seconds:9.0f} images/s  (with warm-up/compile {total:.0f} s)", flush=True
    )


forward_variant("fp32 NCHW tf32", False, False, torch.float32, False, True)
forward_variant("autocast-bf16 NCHW", False, True, torch.float32, False, True)
forward_variant("autocast-bf16 channels_last", True, True, torch.float32, False, True)
forward_variant("bf16 weights NCHW", False, False, torch.bfloat16, False, True)
forward_variant("bf16 weights channels_last", True, False, torch.bfloat16, False, True)
train_variant("tf32 NCHW", False, False, False)
train_variant("autocast-bf16 NCHW", False, True, False)
train_variant("autocast-bf16 channels_last", True, True, False)
forward_variant("bf16 weights NCHW compiled", False, False, torch.bfloat16, True, True)
train_variant("autocast-bf16 NCHW compiled", False, True, True)
