"""Slow pure-Python references for the sampler kernels, and small graphs.

The RNG is re-implemented with Python ints so the references replay the
kernels' walks exactly; the sampled behaviour itself is checked separately
against exact probabilities (chi-square).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

M64 = (1 << 64) - 1
BANNED = -(1 << 30)


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def walk_state(seed, key, walk):
    seed, key, walk = int(seed) % (1 << 64), int(key), int(walk)
    z = mix64((seed * 0x9E3779B97F4A7C15 + key) & M64)
    z = mix64((z + (walk + 1) * 0xD1B54A32D192ED03) & M64)
    return z | 1


def advance(s):
    s ^= (s << 13) & M64
    s ^= s >> 7
    s ^= (s << 17) & M64
    return s


def below(s, n):
    return ((s >> 32) * n) >> 32


def unit(s):
    return (s >> 11) / 9007199254740992.0


def plain_walk(indptr, indices, start, length, seed, walk_index):
    node, s, out = int(start), walk_state(seed, 0, walk_index), [int(start)]
    for _ in range(length):
        a, d = int(indptr[node]), int(indptr[node + 1] - indptr[node])
        s = advance(s)
        if d > 0:
            node = int(indices[a + below(s, d)])
        out.append(node)
    return out


def pick_slot(item_ptr, type_cum, item, u):
    t_count = len(type_cum)
    weights = np.diff(np.concatenate([[0.0], type_cum]))
    live = [t for t in range(t_count)
            if item_ptr[item * t_count + t + 1] > item_ptr[item * t_count + t] and weights[t] > 0]
    if not live:
        return 0, 0
    target = u * sum(weights[t] for t in live)
    chosen = live[-1]
    for t in live:
        target -= weights[t]
        if target < 0:
            chosen = t
            break
    a = int(item_ptr[item * t_count + chosen])
    return a, int(item_ptr[item * t_count + chosen + 1]) - a


def graph_walk(g, origin, walk, length, restart, seed):
    """(items, contexts) reached by one item->context->item walk: the kernel's
    walk_block, one walk at a time."""
    s, cur, items, ctxs = walk_state(seed, origin, walk), origin, [], []
    single = len(g.type_cum) == 1
    for _ in range(length):
        s = advance(s)
        if single:
            a, d = int(g.item_ptr[cur]), int(g.item_ptr[cur + 1] - g.item_ptr[cur])
        else:
            a, d = pick_slot(g.item_ptr, g.type_cum, cur, unit(s))
            s = advance(s)
        pos = a + below(s, d) if d > 0 else -1
        ctx = int(g.item_ctx[pos]) if pos >= 0 else -1
        s = advance(s)
        pos = -1
        if ctx >= 0:
            a, d = int(g.ctx_ptr[ctx]), int(g.ctx_ptr[ctx + 1] - g.ctx_ptr[ctx])
            pos = a + below(s, d) if d > 0 else -1
        s = advance(s)
        if pos >= 0:
            nxt = int(g.ctx_item[pos])
            items.append(nxt)
            ctxs.append(ctx)
            cur = origin if unit(s) < restart else nxt
        else:
            items.append(-1)
            ctxs.append(-1)
            cur = origin
    return items, ctxs


def neighbourhood(g, seed_node, num_walks, length, restart, top_k, seed, bans=()):
    """(items, counts, majority contexts) best first, as the kernel ranks them."""
    counts, cand, votes, order = Counter(), {}, Counter(), []
    banned = {int(seed_node), *map(int, bans)}
    for w in range(num_walks):
        items, ctxs = graph_walk(g, int(seed_node), w, length, restart, seed)
        for v, c in zip(items, ctxs):
            if v < 0 or v in banned:
                continue
            order.append(v)
            counts[v] += 1
            if votes[v] == 0:
                cand[v], votes[v] = c, 1
            elif cand[v] == c:
                votes[v] += 1
            else:
                votes[v] -= 1
    first = {v: i for i, v in reversed(list(enumerate(order)))}
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:top_k]
    return ([v for v, _ in ranked], [c for _, c in ranked], [cand[v] for v, _ in ranked])


def csr(num_rows, src, dst):
    order = np.lexsort((dst, src))
    indptr = np.zeros(num_rows + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=num_rows), out=indptr[1:])
    return indptr, np.asarray(dst)[order]


def chi2_pvalue(observed, expected_probs) -> float:
    """Upper-tail p-value of Pearson's chi-square (torch's regularised gamma)."""
    import torch
    observed = np.asarray(observed, np.float64)
    expected = np.asarray(expected_probs, np.float64) * observed.sum()
    stat = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.shape[0] - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64),
                                         torch.tensor(stat / 2.0, dtype=torch.float64)))
