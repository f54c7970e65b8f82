#!/usr/bin/env python3
"""PyTorch twin of nmgrad's Transformer training step (bench/step-builder.ts).

Reads one JSON object from the file named by --config (model shape, threads, step counts and the
synthetic batch the nmgrad side uses), runs warm-up steps and timed steps of
forward -> label-smoothed loss -> backward -> clip to norm 1 -> Adam, and prints one JSON line:
the median step time, the parameter count, the torch version and the BLAS it runs on.

The model is the one nmgrad's Transformer builds with the bench's config:
  - pre-norm encoder-decoder (final LayerNorm after each stack), ReLU FFN, LayerNorm eps 1e-5;
  - separate source and target embeddings, output projection tied to the target embedding
    (no bias); embeddings scaled by sqrt(d_model) plus fixed sinusoidal positions;
  - dropout p on the embedding sum, on each sublayer's output before the residual add, on the
    attention weights and between the FFN's ReLU and its second Linear;
  - label smoothing 0.1 over all classes, padding id 0 ignored, mean over non-padding targets;
  - global gradient clipping at norm 1, Adam(lr 1e-4, betas 0.9/0.98, eps 1e-9).
nn.Transformer(norm_first=True) has exactly these dropouts and norms; its attention packs
q/k/v into one [3d, d] weight, the same parameters as nmgrad's four d x d projections.
"""
import json
import math
import os
import re
import statistics
import sys
import time


def rss_mb(field):
    """VmRSS / VmHWM of this process in MiB (None where /proc is absent)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def blas_info(torch):
    """What torch says it was built with, and the BLAS libraries actually mapped into this process."""
    show = torch.__config__.show()
    m = re.search(r'BLAS_INFO=(\w+)', show)
    libs = set()
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ''
                name = os.path.basename(path)
                if re.search(r'blas|lapack|mkl_|libmkl|blis', name, re.I):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    libs = sorted(libs)
    joined = ' '.join(libs).lower()
    if 'openblas' in joined:
        kind = 'openblas'
    elif 'mkl' in joined:
        kind = 'mkl'
    elif 'blis' in joined:
        kind = 'blis'
    elif 'blas' in joined:
        kind = 'reference'  # netlib libblas.so.3 (Debian's /usr/lib/<arch>/blas/)
    else:
        kind = (m.group(1) if m else 'unknown')
    return {'blas': kind, 'blas_build': m.group(1) if m else None, 'blas_libs': libs}


def main():
    cfg_path = sys.argv[sys.argv.index('--config') + 1] if '--config' in sys.argv else None
    if cfg_path is None:
        print('usage: torch_step.py --config FILE.json', file=sys.stderr)
        sys.exit(2)
    with open(cfg_path) as f:
        cfg = json.load(f)
    threads = int(cfg['threads'])
    # Before torch loads: OpenBLAS and OpenMP read these at start-up.
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = str(threads)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(5)
    rss_after_import = rss_mb('VmRSS')

    d, heads, ffn, p = cfg['dModel'], cfg['heads'], cfg['ffn'], cfg['dropout']
    vocab, max_len = cfg['vocab'], cfg.get('maxLen', 256)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(vocab, d)
            self.tgt_embed = nn.Embedding(vocab, d)
            nn.init.normal_(self.src_embed.weight, std=d ** -0.5)
            nn.init.normal_(self.tgt_embed.weight, std=d ** -0.5)
            self.core = nn.Transformer(
                d_model=d, nhead=heads, num_encoder_layers=cfg['encoderLayers'], num_decoder_layers=cfg['decoderLayers'],
                dim_feedforward=ffn, dropout=p, activation='relu', batch_first=True, norm_first=True, layer_norm_eps=1e-5)
            self.drop = nn.Dropout(p)
            pos = torch.arange(max_len, dtype=torch.float32)[:, None]
            i = torch.arange(0, d, 2, dtype=torch.float32)
            angle = pos / torch.pow(10000.0, i / d)
            pe = torch.zeros(max_len, d)
            pe[:, 0::2] = torch.sin(angle)
            pe[:, 1::2] = torch.cos(angle)
            self.register_buffer('positions', pe)

        def embed(self, table, ids):
            return self.drop(table(ids) * math.sqrt(d) + self.positions[: ids.shape[1]])

        def forward(self, src, tgt_in):
            src_pad = src == 0
            causal = torch.triu(torch.ones(tgt_in.shape[1], tgt_in.shape[1], dtype=torch.bool), diagonal=1)
            h = self.core(self.embed(self.src_embed, src), self.embed(self.tgt_embed, tgt_in), tgt_mask=causal,
                          src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad)
            return F.linear(h, self.tgt_embed.weight)  # tied output projection

    model = Twin()
    model.train()
    params = sum(t.numel() for t in model.parameters())
    b, s, t = cfg['batch'], cfg['srcLen'], cfg['tgtLen']
    src = torch.tensor(cfg['src'], dtype=torch.long).view(b, s)
    tgt_in = torch.tensor(cfg['tgtIn'], dtype=torch.long).view(b, t)
    tgt_out = torch.tensor(cfg['tgtOut'], dtype=torch.long).view(-1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.view(-1, vocab), tgt_out, ignore_index=0, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    if 'check' in cfg:
        out = check(torch, F, model, cfg['check'], src, tgt_in, tgt_out, vocab, d)
        out.update({'torch': torch.__version__, 'threads': threads, 'params': params})
        print(json.dumps(out))
        return

    loss = None
    for _ in range(int(cfg['warmup'])):
        loss = step()
    times = []
    for _ in range(int(cfg['steps'])):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1000)
    out = {
        'torch': torch.__version__, 'threads': threads, 'torch_threads': torch.get_num_threads(),
        'params': params, 'median_ms': statistics.median(times), 'times_ms': times,
        'loss': float(loss) if loss is not None else None,
        'rss_after_import_mb': rss_after_import, 'vm_hwm_mb': rss_mb('VmHWM'),
    }
    out.update(blas_info(torch))
    print(json.dumps(out))


def torch_name(name, d):
    """nmgrad's parameter name -> (twin's parameter name, row slice of a packed q/k/v projection or None)."""
    fixed = {'srcEmbed.weight': 'src_embed.weight', 'tgtEmbed.weight': 'tgt_embed.weight'}
    if name in fixed:
        return fixed[name], None
    m = re.match(r'(encoder|decoder)Norm\.(weight|bias)$', name)
    if m:
        return 'core.%s.norm.%s' % (m.group(1), m.group(2)), None
    m = re.match(r'(encoder|decoder)\.(\d+)\.(.+)\.(weight|bias)$', name)
    if not m:
        raise KeyError(name)
    stack, i, mod, kind = m.groups()
    prefix = 'core.%s.layers.%s.' % (stack, i)
    m2 = re.match(r'(selfAttn|crossAttn)\.(q|k|v|out)Proj$', mod)
    if m2:
        attn = 'self_attn' if m2.group(1) == 'selfAttn' else 'multihead_attn'
        if m2.group(2) == 'out':
            return prefix + attn + '.out_proj.' + kind, None
        part = 'qkv'.index(m2.group(2))
        return prefix + attn + '.in_proj_' + kind, slice(part * d, (part + 1) * d)
    simple = {'ffn.fc1': 'linear1', 'ffn.fc2': 'linear2', 'norm1': 'norm1', 'norm2': 'norm2', 'norm3': 'norm3'}
    return prefix + simple[mod] + '.' + kind, None


def check(torch, F, model, spec, src, tgt_in, tgt_out, vocab, d):
    """Loads nmgrad's weights into the twin and compares eval-mode (no dropout) logits and loss."""
    import numpy as np
    flat = np.fromfile(spec['weightsFile'], dtype='<f4')
    own = dict(model.named_parameters())
    loaded = set()
    with torch.no_grad():
        for w in spec['weights']:
            target, rows = torch_name(w['name'], d)
            value = torch.from_numpy(flat[w['offset']: w['offset'] + int(np.prod(w['shape']))].copy()).view(*w['shape'])
            dest = own[target] if rows is None else own[target][rows]
            if tuple(dest.shape) != tuple(value.shape):
                raise ValueError('%s -> %s: shape %s vs %s' % (w['name'], target, tuple(value.shape), tuple(dest.shape)))
            dest.copy_(value)
            loaded.add(target)
        missing = sorted(set(own) - loaded)
        if missing:
            raise ValueError('twin parameters nmgrad has no value for: %s' % ', '.join(missing))
        model.eval()
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.view(-1, vocab), tgt_out, ignore_index=0, label_smoothing=0.1)
    theirs = torch.from_numpy(np.fromfile(spec['logitsFile'], dtype='<f4')).view_as(logits)
    return {'max_abs_logit_diff': float((logits - theirs).abs().max()), 'max_abs_logit': float(theirs.abs().max()), 'loss': float(loss)}


if __name__ == '__main__':
    main()
