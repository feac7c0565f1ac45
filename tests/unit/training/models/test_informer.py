"""Informer, part by part (docs/ml-protocol.md §1, §4): shapes, ProbSparse counts and lazy queries,
distilling, the generative decoder, determinism in eval (also after a weights_only reload)."""

from __future__ import annotations

import io
import math

import pytest
import torch

from mt5db_training.models.informer import (
    AttentionLayer,
    DataEmbedding,
    DistillingLayer,
    EncoderStack,
    FullAttention,
    Informer,
    InformerClassifier,
    InformerConfig,
    ProbAttention,
    decoder_input,
    encoder_output_len,
)

TINY = InformerConfig(
    enc_in=7,
    dec_in=7,
    c_out=7,
    seq_len=64,
    label_len=32,
    pred_len=16,
    d_model=32,
    n_heads=4,
    d_ff=64,
    dropout=0.0,
)


def qkv(
    b: int = 2, length: int = 64, h: int = 4, d: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, length, h, d, generator=g) for _ in range(3))  # type: ignore[return-value]


@pytest.mark.parametrize(("length", "factor", "active"), [(32, 5, 20), (64, 5, 25), (32, 8, 32), (96, 5, 25)])
def test_prob_attention_counts_follow_c_ln_l(length: int, factor: int, active: int) -> None:
    u_part, u = ProbAttention(False, factor, 0.0, seed=1).sample_counts(length, length)
    assert u == active == min(factor * math.ceil(math.log(length)), length)
    assert u_part == min(factor * math.ceil(math.log(length)), length)


@pytest.mark.parametrize(
    "attention",
    [
        ProbAttention(False, 5, 0.0, 1),
        ProbAttention(True, 5, 0.0, 1),
        FullAttention(False, 0.0),
        FullAttention(True, 0.0),
    ],
)
def test_attention_output_shapes(attention: torch.nn.Module) -> None:
    q, k, v = qkv()
    assert attention.eval()(q, k, v).shape == (2, 64, 4, 8)
    layer = AttentionLayer(attention, d_model=32, n_heads=4, mix=True)
    x = torch.randn(2, 64, 32)
    assert layer(x, x, x).shape == (2, 64, 32)


@pytest.mark.parametrize("masked", [False, True])
def test_lazy_queries_get_mean_or_cumsum_of_v(masked: bool) -> None:
    attn = ProbAttention(masked, factor=1, dropout=0.0, seed=7).eval()
    q, k, v = qkv(length=64)
    out = attn(q, k, v).transpose(1, 2)  # (B, H, L, D)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    u_part, u = attn.sample_counts(64, 64)
    assert u < 64  # factor 1: most queries are lazy
    m = attn.query_sparsity(qt, kt, attn._sample_keys(64, 64, u_part, qt.device))
    top = m.topk(u, dim=-1).indices
    lazy = torch.ones_like(m, dtype=torch.bool).scatter(-1, top, False)
    expected = vt.cumsum(dim=2) if masked else vt.mean(dim=2, keepdim=True).expand_as(vt)
    assert torch.allclose(out[lazy], expected[lazy], atol=1e-6)
    assert not torch.allclose(out[~lazy], expected[~lazy], atol=1e-3)  # active queries really attend


def test_active_masked_queries_attend_to_the_past_only() -> None:
    """Active rows of the masked ProbAttention equal a causal softmax over keys j <= i."""
    attn = ProbAttention(True, factor=1, dropout=0.0, seed=3).eval()
    q, k, v = qkv(b=1, length=32, h=1, d=8)
    out = attn(q, k, v)[0, :, 0]  # (L, D)
    qt, kt = q.transpose(1, 2), k.transpose(1, 2)
    u_part, u = attn.sample_counts(32, 32)
    top = (
        attn.query_sparsity(qt, kt, attn._sample_keys(32, 32, u_part, qt.device))
        .topk(u, dim=-1)
        .indices[0, 0]
    )
    for i in top.tolist():
        w = torch.softmax(q[0, i, 0] @ k[0, : i + 1, 0].T / math.sqrt(8), dim=-1)
        assert torch.allclose(out[i], w @ v[0, : i + 1, 0], atol=1e-5)


@pytest.mark.parametrize(("length", "halved"), [(96, 48), (97, 49), (64, 32), (25, 13)])
def test_distilling_halves_the_length(length: int, halved: int) -> None:
    layer = DistillingLayer(32).eval()
    assert layer(torch.randn(3, length, 32)).shape == (3, halved, 32)


def test_encoder_output_len_matches_distilling() -> None:
    cfg = InformerConfig(seq_len=96, e_layers=3)
    assert encoder_output_len(cfg) == 24
    assert encoder_output_len(InformerConfig(seq_len=96, e_layers=3, distil=False)) == 96


def test_encoder_stack_concatenates_replicas_on_halved_inputs() -> None:
    cfg = InformerConfig(seq_len=96, d_model=32, n_heads=4, d_ff=64, s_layers=(3, 2, 1), attn="prob")
    stack = EncoderStack(cfg, seed=0).eval()
    # replica i sees the last 96/2^i steps and distils (n_i − 1) times: 96→24, 48→24, 24→24
    assert stack(torch.randn(2, 96, 32)).shape == (2, 72, 32)
    model = Informer(InformerConfig(**{**TINY.__dict__, "seq_len": 96, "s_layers": (3, 2, 1)})).eval()
    assert model(*batch(model.cfg)).shape == (3, TINY.pred_len, TINY.c_out)


def test_decoder_input_is_start_token_then_zeros() -> None:
    token = torch.randn(2, 32, 7)
    x_dec = decoder_input(token, 16)
    assert x_dec.shape == (2, 48, 7)
    assert torch.equal(x_dec[:, :32], token)
    assert torch.count_nonzero(x_dec[:, 32:]) == 0


def test_embedding_shapes() -> None:
    emb = DataEmbedding(7, TINY)
    assert emb(torch.randn(2, 64, 7), torch.rand(2, 64, 4) - 0.5).shape == (2, 64, 32)


def batch(cfg: InformerConfig, b: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, cfg.seq_len, cfg.enc_in, generator=g)
    xm = torch.rand(b, cfg.seq_len, 4, generator=g) - 0.5
    xd = decoder_input(torch.randn(b, cfg.label_len, cfg.dec_in, generator=g), cfg.pred_len)
    xmd = torch.rand(b, cfg.label_len + cfg.pred_len, 4, generator=g) - 0.5
    return x, xm, xd, xmd


@pytest.mark.parametrize("attn", ["prob", "full"])
def test_forecaster_emits_pred_len_and_trains(attn: str) -> None:
    cfg = InformerConfig(**{**TINY.__dict__, "attn": attn})
    model = Informer(cfg)
    x, xm, xd, xmd = batch(cfg)
    out = model(x, xm, xd, xmd)
    assert out.shape == (3, cfg.pred_len, cfg.c_out)
    out.pow(2).mean().backward()  # type: ignore[no-untyped-call]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("attn", ["prob", "full"])
def test_eval_is_deterministic_and_survives_weights_only_reload(attn: str) -> None:
    torch.manual_seed(0)
    cfg = InformerConfig(**{**TINY.__dict__, "attn": attn, "dropout": 0.1})
    model = Informer(cfg).eval()
    inputs = batch(cfg)
    with torch.no_grad():
        first, second = model(*inputs), model(*inputs)
    assert torch.equal(first, second)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    clone = Informer(cfg)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        assert torch.equal(clone.eval()(*inputs), first)


def test_prob_attention_samples_randomly_while_training() -> None:
    torch.manual_seed(0)
    attn = ProbAttention(False, factor=1, dropout=0.0, seed=5).train()
    q, k, v = qkv(length=96)
    outs = [attn(q, k, v) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("attn", ["prob", "full"])
def test_classifier_head_and_determinism(attn: str) -> None:
    cfg = InformerConfig(
        enc_in=23, seq_len=48, d_model=32, n_heads=4, d_ff=64, distil=False, attn=attn, num_class=2
    )
    model = InformerClassifier(cfg).eval()
    x, xm = torch.randn(5, 48, 23), torch.rand(5, 48, 4) - 0.5
    with torch.no_grad():
        a, b = model(x, xm), model(x, xm)
    assert a.shape == (5, 2)
    assert torch.equal(a, b)


def test_small_forecaster_learns_a_sinusoid_on_cpu() -> None:
    torch.manual_seed(0)
    cfg = InformerConfig(
        enc_in=1,
        dec_in=1,
        c_out=1,
        seq_len=48,
        label_len=24,
        pred_len=12,
        d_model=32,
        n_heads=4,
        d_ff=64,
        dropout=0.0,
        attn="prob",
    )
    model = Informer(cfg)
    t = torch.arange(2000, dtype=torch.float32)
    series = torch.sin(2 * torch.pi * t / 24).unsqueeze(-1)
    marks = torch.zeros(2000, 4)
    starts = torch.arange(0, 1900, 7)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_on(s: torch.Tensor) -> torch.Tensor:
        enc = torch.stack([series[i : i + 48] for i in s])
        dec_known = torch.stack([series[i + 24 : i + 48] for i in s])
        target = torch.stack([series[i + 48 : i + 60] for i in s])
        out = model(
            enc,
            marks[:48].expand(len(s), -1, -1),
            decoder_input(dec_known, 12),
            marks[:36].expand(len(s), -1, -1),
        )
        return torch.nn.functional.mse_loss(out, target)

    model.eval()
    with torch.no_grad():
        before = float(loss_on(starts[:64]))
    model.train()
    for step in range(60):
        s = starts[torch.randint(len(starts), (32,), generator=torch.Generator().manual_seed(step))]
        opt.zero_grad()
        loss = loss_on(s)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    model.eval()
    with torch.no_grad():
        after = float(loss_on(starts[:64]))
    assert after < 0.3 * before
