"""Feed-forward transformer (FFT) blocks with relative-position self-attention, as in VITS.

Used at phoneme level (score encoder) and at frame level (frame prior network, F0 predictor,
phoneme predictor). Everything is channel-first `[B, C, T]` with a float mask `[B, 1, T]`; padded
positions are zeroed before every convolution and excluded from attention, so the outputs on an
item's valid positions do not depend on how much padding its batch carries.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a `[B, C, T]` tensor."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # [B, T, C] only inside


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head self-attention with learned relative-position keys and values (Shaw et al. 2018).

    Relative distances are clipped to `[-window_size, window_size]`, so the same weights serve any
    length; the embeddings are shared across heads as in VITS.
    """

    def __init__(self, channels: int, n_heads: int, window_size: int | None = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % n_heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_channels = channels // n_heads
        self.window_size = window_size
        self.query = nn.Conv1d(channels, channels, 1)
        self.key = nn.Conv1d(channels, channels, 1)
        self.value = nn.Conv1d(channels, channels, 1)
        self.output = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        if window_size is not None:
            std = self.head_channels**-0.5
            # [1, 2w+1, head_channels]: one embedding per clipped relative distance -w..w
            self.rel_keys = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.head_channels) * std)
            self.rel_values = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.head_channels) * std)
        for conv in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Self-attention. `x [B, C, T]`, `attn_mask [B, 1, T, T]` (1 where query and key are valid) -> `[B, C, T]`."""
        batch, channels, length = x.shape
        # [B, C, T] -> [B, heads, T, head_channels]
        q = self.query(x).view(batch, self.n_heads, self.head_channels, length).transpose(2, 3)
        k = self.key(x).view(batch, self.n_heads, self.head_channels, length).transpose(2, 3)
        v = self.value(x).view(batch, self.n_heads, self.head_channels, length).transpose(2, 3)
        q = q / math.sqrt(self.head_channels)
        scores = torch.matmul(q, k.transpose(-2, -1))  # [B, heads, T_q, T_k]
        if self.window_size is not None:
            rel_keys = self._embeddings_for_length(self.rel_keys, length)  # [1, 2T-1, head_channels]
            rel_logits = torch.matmul(q, rel_keys.unsqueeze(0).transpose(-2, -1))  # [B, heads, T, 2T-1]
            scores = scores + self._relative_to_absolute(rel_logits)  # [B, heads, T, T]
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        weights = self.dropout(F.softmax(scores, dim=-1))  # [B, heads, T_q, T_k]
        out = torch.matmul(weights, v)  # [B, heads, T, head_channels]
        if self.window_size is not None:
            rel_weights = self._absolute_to_relative(weights)  # [B, heads, T, 2T-1]
            rel_values = self._embeddings_for_length(self.rel_values, length)  # [1, 2T-1, head_channels]
            out = out + torch.matmul(rel_weights, rel_values.unsqueeze(0))  # [B, heads, T, head_channels]
        out = out.transpose(2, 3).reshape(batch, channels, length)  # [B, C, T]
        return self.output(out)

    def _embeddings_for_length(self, embeddings: torch.Tensor, length: int) -> torch.Tensor:
        """Relative embeddings for distances -(T-1)..T-1, `[1, 2T-1, D]` (clipped distances repeat the edge)."""
        window = self.window_size
        assert window is not None
        # Clipping: distances beyond the window reuse the outermost learned embedding. Padding by `length`
        # on both sides whatever the window keeps this free of branches on the length, so an exported
        # graph serves every length, not only the one it was traced with.
        left = embeddings[:, :1].expand(-1, length, -1)
        right = embeddings[:, -1:].expand(-1, length, -1)
        padded = torch.cat([left, embeddings, right], dim=1)  # [1, 2T + 2w + 1, D]; distance 0 at index T + w
        return padded[:, window + 1 : window + 2 * length]

    @staticmethod
    def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
        """`[B, H, T, 2T-1]` indexed by relative distance -> `[B, H, T, T]` indexed by key position."""
        batch, heads, length, _ = x.shape
        x = F.pad(x, (0, 1))  # [B, H, T, 2T]
        x = x.reshape(batch, heads, length * 2 * length)
        x = F.pad(x, (0, length - 1))  # [B, H, 2T*T + T - 1]
        return x.view(batch, heads, length + 1, 2 * length - 1)[:, :, :length, length - 1 :]

    @staticmethod
    def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
        """`[B, H, T, T]` indexed by key position -> `[B, H, T, 2T-1]` indexed by relative distance."""
        batch, heads, length, _ = x.shape
        x = F.pad(x, (0, length - 1))  # [B, H, T, 2T-1]
        x = x.reshape(batch, heads, length * (2 * length - 1))
        x = F.pad(x, (length, 0))  # shift rows so each starts at its own distance 0
        return x.view(batch, heads, length, 2 * length)[:, :, :, 1:]


class ConvFeedForward(nn.Module):
    """Position-wise feed-forward made of two masked 1-D convolutions (kernel > 1 mixes neighbours)."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the length, got {kernel_size}")
        self.conv_in = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_out = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`x [B, C, T]`, `mask [B, 1, T]` -> `[B, C, T]` (zero on padding)."""
        x = torch.relu(self.conv_in(x * mask))
        x = self.conv_out(self.dropout(x) * mask)
        return x * mask


class FFTEncoder(nn.Module):
    """Stack of post-norm FFT blocks: relative self-attention then conv feed-forward, each residual."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        dropout: float,
        window_size: int | None = 4,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attentions = nn.ModuleList(
            RelativeMultiHeadAttention(hidden_channels, n_heads, window_size, dropout) for _ in range(n_layers)
        )
        self.attention_norms = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))
        self.feed_forwards = nn.ModuleList(
            ConvFeedForward(hidden_channels, filter_channels, kernel_size, dropout) for _ in range(n_layers)
        )
        self.feed_forward_norms = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`x [B, C, T]`, `mask [B, 1, T]` -> `[B, C, T]`, zero on padding."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        x = x * mask
        for attention, attention_norm, feed_forward, feed_forward_norm in zip(
            self.attentions, self.attention_norms, self.feed_forwards, self.feed_forward_norms
        ):
            x = attention_norm(x + self.dropout(attention(x, attn_mask)))
            x = feed_forward_norm(x + self.dropout(feed_forward(x, mask)))
        return x * mask
