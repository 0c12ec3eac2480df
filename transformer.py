"""
The transformer pieces the Composer and the Decoder share: attention (causal self-attention
with an optional key/value cache and optional rotary positions, or cross-attention to a
condition), MLP, a pre-norm Block that does self-attention, then cross-attention to each of
its conditions, then the MLP, and the syllables' embedding by their parts. All attention goes
through PyTorch's fused scaled_dot_product_attention.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lyrics import SPECIALS, syllable_parts


class Attention(nn.Module):

    def __init__(self, n_embd, n_head, dropout, cross=False):
        super().__init__()
        assert n_embd % n_head == 0
        self.n_head, self.dropout, self.cross = n_head, dropout, cross
        self.q = nn.Linear(n_embd, n_embd)
        self.kv = nn.Linear(n_embd, 2 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.proj_dropout = nn.Dropout(dropout)

    def heads(self, x):
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)

    def forward(self, x, context=None, mask=None, cache=None, rotary=None):
        """Self-attention (causal) when context is None, else cross-attention to context (B, S, C)
        where mask (B, S) is True for the keys to attend. cache: a dict that holds this layer's
        keys and values of the earlier steps (or of the context) while sampling one step at a time;
        cache['window'], if set, keeps only that many of the latest steps. rotary: (cos, sin) of
        the steps' positions (rotary_tables), turning queries and keys in self-attention."""
        q = self.heads(self.q(x))
        if context is not None and cache is not None and 'k' in cache:
            k, v = cache['k'], cache['v']  # a condition's keys and values, made at the first step
        else:
            k, v = (self.heads(t) for t in self.kv(x if context is None else context).chunk(2, dim=-1))
            if rotary is not None and context is None:  # keys are cached turned: a score sees only the distance
                q, k = rotate(q, *rotary), rotate(k, *rotary)
            if cache is not None:
                if 'k' in cache:  # earlier steps' keys and values, then this step's
                    k, v = torch.cat([cache['k'], k], dim=2), torch.cat([cache['v'], v], dim=2)
                if 'window' in cache:  # attend to the last `window` steps only (the span trained on)
                    k, v = k[:, :, -cache['window']:], v[:, :, -cache['window']:]
                cache['k'], cache['v'] = k, v
        dropout = self.dropout if self.training else 0.0
        if context is None:
            # causal over a whole sequence; one new step with a cache sees every cached key
            assert q.shape[2] == 1 or q.shape[2] == k.shape[2], "with a cache, feed a prefix first, then one step at a time"
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=q.shape[2] > 1)
        else:
            attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(x.shape)  # (B, nh, T, hs) -> (B, T, C)
        return self.proj_dropout(self.proj(y))


class MLP(nn.Module):

    def __init__(self, n_embd, dropout):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)
        self.proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Causal self-attention, cross-attention to each of n_cross conditions, MLP; pre-norm residuals."""

    def __init__(self, n_embd, n_head, dropout, n_cross=0):
        super().__init__()
        self.ln_self = nn.LayerNorm(n_embd)
        self.attn = Attention(n_embd, n_head, dropout)
        self.ln_cross = nn.ModuleList(nn.LayerNorm(n_embd) for _ in range(n_cross))
        self.cross = nn.ModuleList(Attention(n_embd, n_head, dropout, cross=True) for _ in range(n_cross))
        self.ln_mlp = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x, conditions=(), cache=None, rotary=None):
        """x (B, T, C); conditions: one (context (B, S, C), mask (B, S) or None) per cross-attention;
        rotary: (cos, sin) for self-attention's positions, or None."""
        x = x + self.attn(self.ln_self(x), cache=cache, rotary=rotary)
        for i, (ln, cross, (context, mask)) in enumerate(zip(self.ln_cross, self.cross, conditions)):
            x = x + cross(ln(x), context, mask, None if cache is None else cache.setdefault(f'cross{i}', {}))
        return x + self.mlp(self.ln_mlp(x))


class SyllableEmbedding(nn.Module):
    """Token ids -> embeddings, a syllable's the sum of its initial's, its final's and its tone's
    (lyrics.syllable_parts) and one row that every syllable shares; a special token ('<pad>',
    '<unk>', '<en>') has a row of its own. No syllable has a row of its own: one that no training
    song sang is embedded by what it is made of, every part of which was trained by other syllables,
    as the corpus's singer sings it (a row of its own would stay at its random start)."""

    def __init__(self, n_embd):
        super().__init__()
        parts = torch.from_numpy(syllable_parts())  # (V, 3): initial, final, tone; 0 = none
        self.register_buffer('parts', parts, persistent=False)
        self.register_buffer('kind', torch.arange(len(parts)).clamp(max=len(SPECIALS)), persistent=False)
        self.kinds = nn.Embedding(len(SPECIALS) + 1, n_embd)  # each special token, then 'a syllable'
        self.part = nn.ModuleList(nn.Embedding(int(n) + 1, n_embd) for n in parts.max(0).values)

    def forward(self, tokens):
        parts = self.parts[tokens]  # (..., 3)
        # halved: four rows of GPT-2's spread (0.02) start with the spread of one
        return (self.kinds(self.kind[tokens]) + sum(emb(parts[..., i]) for i, emb in enumerate(self.part))) / 2

    def table(self):
        """Every token's embedding, (V, C): an output layer's matrix."""
        return self(torch.arange(len(self.parts), device=self.parts.device))


def time_features(seconds, shortest, longest, n=8):
    """(...) seconds -> (..., 2n) sines and cosines with periods from shortest to longest seconds."""
    periods = shortest * (longest / shortest) ** torch.linspace(0, 1, n, device=seconds.device)
    angles = seconds[..., None].float() * (2 * math.pi / periods)
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


def rotary_tables(positions, head_size, base=10000.0):
    """Rotary position embedding (RoFormer): positions (T,) -> cos, sin (T, head_size // 2). A query
    and a key turned by their positions score by the distance between them alone, so no position
    is ever out of the range trained on."""
    frequencies = base ** -(torch.arange(0, head_size, 2, device=positions.device).double() / head_size)
    angles = positions.double()[:, None] * frequencies  # (T, head_size // 2); float64: exact far into a song
    return torch.cos(angles).float(), torch.sin(angles).float()


def rotate(x, cos, sin):
    """x (B, nh, T, hs) turned pairwise (first half against second half) by the angles of cos, sin (T, hs // 2)."""
    a, b = x.float().chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], -1).to(x.dtype)


def drop_condition(context, mask, null, drop):
    """Classifier-free guidance: where drop (B,) is True, a condition (B, S, C) with mask (B, S)
    becomes the learned null token `null` (1, 1, C), the only key attended."""
    context = torch.where(drop[:, None, None], null.to(context.dtype), context)
    only_first = torch.zeros_like(mask)
    only_first[:, 0] = True
    return context, torch.where(drop[:, None], only_first, mask)


def init_weights(module):
    """GPT-2's initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, 'bias', None) is not None:
            nn.init.zeros_(module.bias)


def scale_residual_projections(model, n_layer):
    """GPT-2: the projections into the residual stream get std 0.02 / sqrt(2 * n_layer)."""
    for name, p in model.named_parameters():
        if name.endswith('proj.weight'):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
