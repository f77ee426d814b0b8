"""Convolutional front ends of the paper (sec. 3.3 N-MNIST frame CNN, sec. 3.4 GRID video)."""

from __future__ import annotations

from torch import Tensor, nn


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
