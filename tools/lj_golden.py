#!/usr/bin/env python3
"""
Golden values for the Lennard-Jones loss (src/losses/lj.ts), computed with PyTorch in float64.

Regenerate (Debian's PyTorch lives under /usr/bin/python3, not the pyenv `python3` on PATH):

    cd /work/main && /usr/bin/python3 tools/lj_golden.py        # writes test/fixtures/lj-golden.json

PyTorch is only a reference for this script and the fixture; ljtrain never imports it.

`lj_loss` below is the paper's Listing 2 (appendix E.2) verbatim; `LJLoss.forward` multiplies it by
epsilon (Listing 3). `lj_loss_adaptive` is eq. 8 of section 4 with the same clamps and mean:
    V = (sigma/r)^(2n) - cos * (sigma/r)^n,   cos on the diagonal taken as the constant 1.
'batch' particles: (b, d) features are treated as (1, b, d).

Every case's features are rounded to float32 first, so the float32 ONNX graph sees exactly the
inputs torch saw. Random cases are re-drawn until no off-diagonal pair sits within a relative
margin of a clamp boundary (r at 1e-3, V at clamp_max): there float32 and float64 may land on
different sides and the gradient jumps. Each case records how many off-diagonal pairs the
clamp_max clamp hits (`clampedPairs` of `offDiagPairs`), and whether the listing run in float32
torch stays finite (`torchFloat32Finite`): for n = 12 and r clamped at 1e-3, (sigma/r)^24 overflows
float32 and torch gives inf/NaN, which lj.ts's s-clip guard avoids without changing the value.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'lj-golden.json')

R_MIN = 1e-3
# Relative margins kept from the clamp boundaries in random cases.
V_MARGIN = 1e-2
R_MARGIN = 1e-1


# ---------------------------------------------------------------- paper, Listing 2 (verbatim)
def lj_loss(features, sigma=1.0, n=6, clamp_max=5.0):
    features_normalized = F.normalize(features, dim=2)
    cosine_sim = torch.matmul(features_normalized,
        features_normalized.transpose(1, 2))
    cosine_dist = 1 - cosine_sim
    diag_indices = torch.arange(cosine_dist.size(1),
        device=cosine_dist.device)
    cosine_dist[:, diag_indices, diag_indices] = sigma
    cosine_dist = torch.clamp(cosine_dist, min=1e-3)
    term1 = (sigma / cosine_dist) ** (2 * n)
    term2 = ((sigma / cosine_dist) ** n)
    lj_potential = (term1 - term2)
    lj_potential = torch.clamp(lj_potential, max=clamp_max)
    lj_loss = torch.mean(lj_potential)
    return lj_loss


# ---------------------------------------------------------------- adaptive, eq. 8
def lj_loss_adaptive(features, sigma=1.0, n=6, clamp_max=5.0):
    features_normalized = F.normalize(features, dim=2)
    cosine_sim = torch.matmul(features_normalized,
        features_normalized.transpose(1, 2))
    cosine_dist = 1 - cosine_sim
    diag_indices = torch.arange(cosine_dist.size(1),
        device=cosine_dist.device)
    cosine_dist[:, diag_indices, diag_indices] = sigma
    cosine_dist = torch.clamp(cosine_dist, min=1e-3)
    cos_factor = cosine_sim.clone()
    cos_factor[:, diag_indices, diag_indices] = 1.0  # constant: no gradient through the diagonal
    term1 = (sigma / cosine_dist) ** (2 * n)
    term2 = cos_factor * ((sigma / cosine_dist) ** n)
    lj_potential = (term1 - term2)
    lj_potential = torch.clamp(lj_potential, max=clamp_max)
    return torch.mean(lj_potential)


def eps_loss(features, variant, particles, sigma, n, epsilon, clamp_max):
    """LJ Loss (Listing 3): epsilon * lj_loss, with the particle layout applied."""
    f = features.unsqueeze(0) if particles == 'batch' else features
    fn = lj_loss if variant == 'paper' else lj_loss_adaptive
    return epsilon * fn(f, sigma=sigma, n=n, clamp_max=clamp_max)


def diagnostics(features, variant, particles, sigma, n, clamp_max):
    """Off-diagonal r and unclamped V (float64), to check margins and count clamped pairs."""
    with torch.no_grad():
        f = features.unsqueeze(0) if particles == 'batch' else features
        fh = F.normalize(f, dim=2)
        cos = fh @ fh.transpose(1, 2)
        r = 1 - cos
        l = r.shape[1]
        off = ~torch.eye(l, dtype=torch.bool).expand_as(r)
        rc = torch.clamp(r, min=R_MIN)
        s = sigma / rc
        c = cos if variant == 'adaptive' else torch.ones_like(cos)
        v = s ** (2 * n) - c * s ** n
        return r[off], v[off]


def margins_ok(r, v, clamp_max):
    near_r = (r - R_MIN).abs() < R_MARGIN * R_MIN
    near_v = (v - clamp_max).abs() < V_MARGIN * clamp_max
    return not bool(near_r.any() or near_v.any())


def to_f32(t):
    return t.float().double()


def make_case(name, variant, particles, sigma, n, epsilon, clamp_max, features, *, random=False, note=None):
    features = to_f32(features)
    r, v = diagnostics(features, variant, particles, sigma, n, clamp_max)
    if random:
        assert margins_ok(r, v, clamp_max), name
    x = features.clone().requires_grad_(True)
    loss = eps_loss(x, variant, particles, sigma, n, epsilon, clamp_max)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all(), name
    # The same listing in float32 torch: finite or not (informational).
    x32 = features.float().clone().requires_grad_(True)
    l32 = eps_loss(x32, variant, particles, sigma, n, epsilon, clamp_max)
    l32.backward()
    f32_ok = bool(torch.isfinite(l32) and torch.isfinite(x32.grad).all())
    case = {
        'name': name,
        'variant': variant,
        'particles': particles,
        'sigma': sigma,
        'n': n,
        'epsilon': epsilon,
        'clampMax': clamp_max,
        'shape': list(features.shape),
        'offDiagPairs': int(r.numel()),
        'clampedPairs': int((v > clamp_max).sum()),
        'torchFloat32Finite': f32_ok,
        'features': [float(a) for a in features.flatten().tolist()],
        'loss': float(loss.item()),
        'grad': [float(a) for a in x.grad.flatten().tolist()],
    }
    if note:
        case['note'] = note
    return case


def random_case(name, variant, particles, sigma, n, epsilon, clamp_max, shape, seed, scale=1.0, shift=0.0):
    """Draws features until margins hold and the case has both clamped and unclamped pairs."""
    for attempt in range(1000):
        g = torch.Generator().manual_seed(seed * 1000 + attempt)
        f = to_f32(torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift)
        r, v = diagnostics(f, variant, particles, sigma, n, clamp_max)
        clamped = int((v > clamp_max).sum())
        if margins_ok(r, v, clamp_max) and 0 < clamped < r.numel():
            return make_case(name, variant, particles, sigma, n, epsilon, clamp_max, f, random=True)
    raise RuntimeError(f'{name}: no admissible draw')


def main():
    torch.set_default_dtype(torch.float64)
    cases = []

    # Random features over both variants, several sigma / n / epsilon / clamp_max, both layouts.
    grid = [
        # (sigma, n, epsilon, clamp_max, particles, shape)
        (1.0, 6, 0.1, 5.0, 'tokens', [2, 5, 4]),
        (0.5, 6, 1.0, 5.0, 'tokens', [1, 7, 3]),
        (1.5, 2, 0.5, 5.0, 'tokens', [3, 4, 8]),
        (1.0, 12, 0.1, 5.0, 'tokens', [2, 5, 4]),
        (0.5, 12, 2.0, 10.0, 'tokens', [3, 4, 8]),
        (1.5, 6, 0.1, 50.0, 'batch', [6, 5]),
        (1.0, 2, 1.0, 5.0, 'batch', [6, 5]),
        (0.5, 3, 0.25, 2.0, 'tokens', [2, 5, 4]),
    ]
    seed = 1
    for variant in ('paper', 'adaptive'):
        for sigma, n, epsilon, clamp_max, particles, shape in grid:
            name = f'{variant}-{particles}-s{sigma}-n{n}-{"x".join(map(str, shape))}'
            cases.append(random_case(name, variant, particles, sigma, n, epsilon, clamp_max, shape, seed))
            seed += 1
    # Non-integer n takes lj.ts's Pow path instead of repeated squaring.
    cases.append(random_case('adaptive-tokens-s1.0-n2.5-2x5x4', 'adaptive', 'tokens', 1.0, 2.5, 0.1, 5.0, [2, 5, 4], seed))
    seed += 1

    # Identical directions within each sample (positive power-of-two scalings, so the normalised
    # rows are bitwise equal): every off-diagonal r is ~0 -> clamped to 1e-3 -> V clamped to
    # clamp_max; diagonal V = 1 - 1 = 0. Loss = eps*clamp_max*(l*l - l)/(l*l), gradient 0.
    g = torch.Generator().manual_seed(77)
    base = torch.randn(2, 1, 4, generator=g)
    scales = torch.tensor([1.0, 2.0, 0.5, 4.0, 0.25]).view(1, 5, 1)
    ident = base * scales
    for variant in ('paper', 'adaptive'):
        cases.append(make_case(f'{variant}-identical-s1.0-n6', variant, 'tokens', 1.0, 6, 0.1, 5.0, ident,
                               note='all rows of a sample parallel: off-diagonal V = clamp_max, diagonal 0'))
    # The same with n = 12, sigma = 1.5: (1.5/1e-3)^24 ~ 1.7e76 overflows float32 (term1 = inf,
    # clamped to clamp_max; torch float32 stays finite only because r < 1e-3 masks the gradient).
    cases.append(make_case('paper-identical-s1.5-n12', 'paper', 'tokens', 1.5, 12, 1.0, 5.0, ident,
                           note='(sigma/r)^24 overflows float32 here; float64 reference is exact'))
    # Near-identical rows (r ~ 2e-3..1e-2, above the 1e-3 clamp) with sigma = 1.5, n = 12:
    # (sigma/r)^24 ~ 1e59..1e69 is inf in float32, and since the r-clamp passes the gradient there,
    # float32 torch back-propagates 0 * inf = NaN. The last row is nearly opposite, so its pairs
    # (r ~ 1.9 > 1.38) are not clamped.
    near = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.07, 0.0], [1.0, 0.0, 0.1], [1.0, -0.12, 0.05], [-1.0, 0.2, 0.3]])
    near = near * torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0]).view(5, 1)
    c = make_case('paper-near-identical-s1.5-n12', 'paper', 'tokens', 1.5, 12, 1.0, 5.0, near.view(1, 5, 3),
                  note='float32 torch gives NaN gradients here; float64 reference and ljtrain stay finite')
    r, v = diagnostics(to_f32(near.view(1, 5, 3)), 'paper', 'tokens', 1.5, 12, 5.0)
    assert margins_ok(r, v, 5.0) and not c['torchFloat32Finite'] and 0 < c['clampedPairs'] < c['offDiagPairs']
    assert bool((r > R_MIN).all()) and float(r.min()) < 0.01
    cases.append(c)
    cases.append(make_case('adaptive-identical-batch-s0.5-n12', 'adaptive', 'batch', 0.5, 12, 0.1, 5.0,
                           ident[0].clone(), note='batch particles, all parallel'))

    # A zero feature vector: F.normalize maps it to 0 (denominator 1e-12), so its cos with every
    # other row is 0 (r = 1); its gradient is (dL/df_hat) / 1e-12, large but finite.
    for variant, seed_z in (('paper', 0), ('adaptive', 1)):
        for attempt in range(1000):
            gg = torch.Generator().manual_seed(5000 + 100 * seed_z + attempt)
            z = to_f32(torch.randn(2, 5, 4, generator=gg))
            z[0, 2] = 0.0
            r, v = diagnostics(z, variant, 'tokens', 1.0, 6, 5.0)
            if margins_ok(r, v, 5.0):
                break
        cases.append(make_case(f'{variant}-zero-vector-s1.0-n6', variant, 'tokens', 1.0, 6, 0.1, 5.0, z,
                               note='row [0,2] is all zeros'))
    # A zero row with sigma = 1.5 in batch layout (r = 1 for the zero row: unclamped for clamp_max 50).
    zb = to_f32(torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0], [-0.25, 1.0, 0.5], [0.5, -0.5, -1.0]]))
    cases.append(make_case('paper-zero-vector-batch-s1.5-n2', 'paper', 'batch', 1.5, 2, 1.0, 50.0, zb,
                           note='row 1 is all zeros'))

    # Clusters: pairs inside a cluster are close (clamped), pairs across clusters are not.
    g = torch.Generator().manual_seed(79)
    for variant in ('paper', 'adaptive'):
        centers = torch.eye(4)[:2] * 3.0  # two orthogonal centres
        rows = []
        for k in range(2):
            for j in range(3):
                rows.append(centers[k] + 0.05 * torch.randn(4, generator=g))
        feats = torch.stack(rows).view(1, 6, 4)
        feats = torch.cat([feats, feats.flip(1) * torch.tensor([1.0, -1.0, 1.0, -1.0])], 0)
        c = make_case(f'{variant}-clusters-s1.0-n6', variant, 'tokens', 1.0, 6, 0.1, 5.0, feats,
                      note='two tight clusters per sample: within-cluster pairs clamp, cross-cluster pairs do not')
        r, v = diagnostics(to_f32(feats), variant, 'tokens', 1.0, 6, 5.0)
        assert margins_ok(r, v, 5.0) and 0 < c['clampedPairs'] < c['offDiagPairs'], c['name']
        cases.append(c)

    # Orthogonal and opposite rows: cos in {0, -1, 1}; r in {1, 2} off the diagonal.
    orth = torch.tensor([[[1.0, 0, 0, 0], [0, 2.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0.5, 0], [0, -3.0, 0, 0]]])
    for variant, sigma, n in (('paper', 1.0, 6), ('adaptive', 1.0, 6), ('paper', 1.5, 2), ('adaptive', 1.0, 12)):
        cases.append(make_case(f'{variant}-orthogonal-opposite-s{sigma}-n{n}', variant, 'tokens', sigma, n, 1.0, 5.0, orth,
                               note='rows are +-e1, +-e2, e3: cos in {0, -1}'))

    with open(OUT, 'w') as fh:
        json.dump({
            'generator': 'tools/lj_golden.py (PyTorch %s, float64)' % torch.__version__,
            'regenerate': 'cd /work/main && /usr/bin/python3 tools/lj_golden.py',
            'cases': cases,
        }, fh, separators=(',', ':'))
        fh.write('\n')
    size = os.path.getsize(OUT)
    print(f'wrote {len(cases)} cases, {size} bytes to {os.path.normpath(OUT)}')
    for c in cases:
        print(f"  {c['name']:45s} loss={c['loss']:.9g} clamped={c['clampedPairs']}/{c['offDiagPairs']} "
              f"max|grad|={max(abs(x) for x in c['grad']):.3g} torch32finite={c['torchFloat32Finite']}")


if __name__ == '__main__':
    main()
