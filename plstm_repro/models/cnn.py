"""Convolutional front ends of the paper (sec. 3.3 N-MNIST frame CNN, sec. 3.4 GRID video)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..cells.checks import valid_mask


class FrameCNN(nn.Module):
    """N-MNIST frame baseline (sec. 3.3): three alternating layers of 8 5x5 convolutions with
    leaky ReLU and 2x2 max-pooling, fully connected to 256, then to the classes.

    Input: frames of per-pixel event counts [B, C, H, W] (34x34 for N-MNIST).
    """

    def __init__(self, num_outputs: int = 10, in_channels: int = 1, height: int = 34,
                 width: int = 34, channels: int = 8, hidden: int = 256):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(3):
            layers += [nn.Conv2d(c, channels, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2)]
            c = channels
        self.features = nn.Sequential(*layers)
        flat = channels * (height // 8) * (width // 8)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.LeakyReLU(0.01),
                                  nn.Linear(hidden, num_outputs))

    def forward(self, frames: Tensor) -> Tensor:
        if frames.dim() != 4:
            raise ValueError(f"frames: expected [B, C, H, W], got {tuple(frames.shape)}")
        return self.head(self.features(frames))


class EventFrameCNN(nn.Module):
    """The frame CNN on event data: ``forward(x, t, lengths)`` like the recurrent models (one
    batch format and one ``fit()`` for all of Table 1), binning each sample's events into one
    frame of per-pixel event counts (sec. 3.3, Fig. 5b) before :class:`FrameCNN`.

    x [B, T, F] holds the pixel address (y * width + x) in feature 0; padded steps count
    nothing. The counts are not normalised: a frame's statistics follow the event rate, which is
    why the paper's CNN suffers when rho changes at test time.
    """

    def __init__(self, num_outputs: int = 10, sensor: tuple[int, int] = (34, 34), **cnn_kwargs):
        super().__init__()
        self.sensor = tuple(sensor)
        self.cnn = FrameCNN(num_outputs=num_outputs, in_channels=1, height=sensor[1],
                            width=sensor[0], **cnn_kwargs)

    def frames(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """Per-pixel event counts [B, 1, H, W]."""
        B, T = x.shape[:2]
        W, H = self.sensor
        addr = x[..., 0]
        w = torch.ones_like(addr)
        if lengths is not None:
            valid = valid_mask(lengths.to(x.device), T)
            addr, w = torch.where(valid, addr, 0.0), valid.to(x.dtype)
        addr = addr.long()
        if addr.numel() and (int(addr.min()) < 0 or int(addr.max()) >= W * H):
            raise ValueError(f"x[..., 0]: expected pixel addresses in [0, {W * H}), got "
                             f"{int(addr.min())}..{int(addr.max())}")
        counts = x.new_zeros(B, W * H).scatter_add_(1, addr, w)
        return counts.view(B, 1, H, W)

    def forward(self, x: Tensor, t: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        return self.cnn(self.frames(x, lengths))


class GridVideoFrontEnd(nn.Module):
    """GRID video stream front end (sec. 3.4): three alternating layers of 16 5x5 (valid)
    convolutions and 2x2 subsampling, 1x48x48 -> 16x2x2, flattened to 64 features per frame.

    Input [B, T, 1, 48, 48] (or [N, 1, 48, 48]); output [B, T, 64] (or [N, 64]).
    """

    out_features = 64

    def __init__(self, channels: int = 16):
        super().__init__()
        layers, c = [], 1
        for _ in range(3):
            layers += [nn.Conv2d(c, channels, 5), nn.ReLU(), nn.MaxPool2d(2)]
            c = channels
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = channels * 4

    def forward(self, frames: Tensor) -> Tensor:
        if frames.shape[-3:] != (1, 48, 48):
            raise ValueError(f"frames: expected [..., 1, 48, 48], got {tuple(frames.shape)}")
        lead = frames.shape[:-3]
        return self.net(frames.reshape(-1, 1, 48, 48)).reshape(*lead, -1)
