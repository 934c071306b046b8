"""A fair PyTorch reference of vaeas_np's models, written for speed.

Same models as the library (SPEC sections 2-4): encoder 784-500-500-(2x40),
decoder 40-500x5-784 Bernoulli logits, classifier 40-500-500 then a
hierarchical (balanced binary tree, V-1 node rows (w_n, b_n)) or full softmax
over V labels; ReLU; He (kaiming normal) init of the hidden layers; the
decoder's output layer starts at zero weights with bias = logit(pixel mean);
float32; Adam lr 1e-3 (fused, the faster of fused / foreach on CPU here);
the node rows are an ``nn.Embedding(V-1, h+1, sparse=True)`` updated by
``SparseAdam`` (lazy Adam, as the library's).

VAE-AS objective: recon + beta KL + (alpha - beta) I_hat for encoder/decoder,
SC for the classifier, in ONE backward: the classifier sees
``z_s = grad_scale(z, -(alpha - beta))`` and the loss adds SC = -mean log s;
then d/d(classifier) = dSC and d/dz = (alpha - beta)/B d(sum log s)/dz, exactly
the library's "one forward and one backward through the classifier".

PyTorch is not a dependency of vaeas_np: only ``bench/`` imports it.
"""
import math
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        "bench/torch_reference.py needs PyTorch, which is not a dependency of vaeas_np.\n"
        "Install a CPU build, e.g.  pip install torch==2.13.0  (see bench/RESULTS.md).") from exc

D, LATENT, B = 784, 40, 128
LOG2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------- setup
def setup(threads, device="cpu"):
    """Thread count equal to ours; returns the device and its name.

    ``device``: "cpu" (the default: the comparison is on the same CPU) or "cuda".
    Float32 stays float32 on CUDA too: TF32 matrix products are left off (PyTorch's
    default for matmul), so both sides do the same arithmetic.
    """
    torch.set_num_threads(threads)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--torch-device cuda: this PyTorch build sees no CUDA device "
                             f"(torch {torch.__version__}); use --torch-device cpu.")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda"), torch.cuda.get_device_name(0)
    if device != "cpu":
        raise SystemExit(f"unknown device {device!r}: use 'cpu' or 'cuda'")
    return torch.device("cpu"), "cpu"


def gpu_memory_mb(dev):
    """Peak memory PyTorch allocated on ``dev`` (MB), or None on the CPU."""
    if dev.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(dev) / 2 ** 20


def sync(dev):
    """Wait for queued device work (timings on CUDA)."""
    if dev.type == "cuda":
        torch.cuda.synchronize()


def mlp(sizes, final_relu):
    """Linear layers with ReLU between (and after the last if ``final_relu``), He init."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(sizes) - 2 or final_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def balanced_tree(V):
    """Paths of a balanced binary tree over V leaves by recursive halving (left = ceil(n/2)).

    Returns paths (V, depth) int64 node ids (V-1 internal nodes), signs (V, depth)
    float32 (+1 left, -1 right, 0 beyond the path) and depth = ceil(log2 V).
    """
    depth = max(1, math.ceil(math.log2(V)))
    paths = np.zeros((V, depth), np.int64)
    signs = np.zeros((V, depth), np.float32)
    level, node = [(0, V)], 0
    for d in range(depth):
        nxt = []
        for lo, hi in level:
            if hi - lo < 2:
                continue
            mid = lo + (hi - lo + 1) // 2
            paths[lo:hi, d] = node
            signs[lo:mid, d], signs[mid:hi, d] = 1.0, -1.0
            node += 1
            nxt += [(lo, mid), (mid, hi)]
        level = nxt
    assert node == V - 1
    return paths, signs


# ----------------------------------------------------------------- models
class HierarchicalSoftmax(nn.Module):
    """log s(e|h) = sum_j log sigmoid(sign_j (w_nj . h + b_nj)) over gathered node rows."""

    def __init__(self, h, V, sparse=True):
        super().__init__()
        paths, signs = balanced_tree(V)
        self.register_buffer("paths", torch.from_numpy(paths))
        self.register_buffer("signs", torch.from_numpy(signs))
        self.rows = nn.Embedding(V - 1, h + 1, sparse=sparse)
        nn.init.zeros_(self.rows.weight)                 # as the library (init_std = 0)

    def forward(self, H, labels):
        nodes = self.paths[labels]                       # (B, depth)
        W = self.rows(nodes)                             # (B, depth, h+1)
        score = torch.baddbmm(W[..., -1:], W[..., :-1], H.unsqueeze(-1)).squeeze(-1)
        sign = self.signs[labels]                        # +1 / -1 on the path, 0 beyond
        return (F.logsigmoid(sign * score) * (sign != 0)).sum(1)


class FullSoftmax(nn.Module):
    """log s(e|h) = log_softmax(W h + b)[e] over all V labels."""

    def __init__(self, h, V):
        super().__init__()
        self.lin = nn.Linear(h, V)
        nn.init.normal_(self.lin.weight, 0.0, 0.05)
        nn.init.zeros_(self.lin.bias)

    def forward(self, H, labels):
        return -F.cross_entropy(self.lin(H), labels, reduction="none")


def grad_scale(x, s):
    """Identity in the forward pass; multiplies the gradient by s in the backward pass."""
    return x * s + (x * (1.0 - s)).detach()


class VAE(nn.Module):
    """Plain VAE with the library's sizes and initialisation; ``loss(x, labels)``."""

    def __init__(self, pixel_mean=0.13, beta=1.0):
        super().__init__()
        self.beta = beta
        self.encoder = mlp((D, 500, 500, 2 * LATENT), final_relu=False)
        self.decoder = mlp((LATENT, 500, 500, 500, 500, 500, D), final_relu=False)
        out = self.decoder[-1]
        nn.init.zeros_(out.weight)
        p = min(max(pixel_mean, 1e-3), 1 - 1e-3)
        nn.init.constant_(out.bias, math.log(p / (1 - p)))

    def encode(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def elbo_terms(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1).mean()
        return z, recon, kl

    def loss(self, x, labels=None):
        _, recon, kl = self.elbo_terms(x)
        return recon + self.beta * kl

    def optimizers(self, adam="fused"):
        return [make_adam(list(self.parameters()), adam)]


class VAEAS(VAE):
    """VAE-AS: recon + beta KL + (alpha - beta) I_hat; the classifier minimises SC."""

    def __init__(self, V=55_000, softmax="hierarchical", alpha=2.0, beta=1.0, sparse=True,
                 **kw):
        super().__init__(beta=beta, **kw)
        self.alpha, self.V = alpha, V
        self.classifier = mlp((LATENT, 500, 500), final_relu=True)
        self.output = (HierarchicalSoftmax(500, V, sparse) if softmax == "hierarchical"
                       else FullSoftmax(500, V))

    def loss(self, x, labels):
        z, recon, kl = self.elbo_terms(x)
        w = self.alpha - self.beta
        logp = self.output(self.classifier(grad_scale(z, -w)), labels)
        sc = -logp.mean()                                # I_hat = log V - sc
        return recon + self.beta * kl + sc               # + w * I_hat as far as z is concerned

    def optimizers(self, adam="fused"):
        sparse = [p for n, p in self.named_parameters() if n.startswith("output.rows")
                  and self.output.rows.sparse]
        dense = [p for p in self.parameters() if all(p is not q for q in sparse)]
        opts = [make_adam(dense, adam)]
        if sparse:
            opts.append(torch.optim.SparseAdam(sparse, lr=1e-3))
        return opts


def make_adam(params, kind):
    """Adam lr 1e-3: kind 'fused' / 'foreach' / 'plain' (the for-loop implementation)."""
    kw = {"fused": dict(fused=True), "foreach": dict(foreach=True),
          "plain": dict(foreach=False)}[kind]
    return torch.optim.Adam(params, lr=1e-3, **kw)


# ----------------------------------------------------------------- training
def make_step(model, opts, compile_mode=None):
    """One training step ``step(x, labels)``: forward, one backward, every optimizer.

    ``compile_mode``: None (eager) or a ``torch.compile`` mode applied to the loss
    (forward + backward graph through AOTAutograd); falls back to eager with a
    message if compilation fails.
    """
    state = {"loss": model.loss, "compiled": False}
    if compile_mode:
        try:
            state["loss"] = torch.compile(model.loss, mode=compile_mode, dynamic=False)
            state["compiled"] = True
        except Exception as exc:                         # pragma: no cover
            print(f"# torch.compile unavailable ({type(exc).__name__}: {exc}); eager")

    def run(x, labels):
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss = state["loss"](x, labels)
        loss.backward()
        return loss

    def step(x, labels):
        try:
            loss = run(x, labels)
        except Exception as exc:                         # compile errors surface here
            if not state["compiled"]:
                raise
            print(f"# torch.compile of the whole loss failed ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:120]}); compiling the dense MLPs only")
            state["loss"], state["compiled"] = model.loss, "mlps"
            try:
                compile_mlps(model, compile_mode)
                loss = run(x, labels)
            except Exception as exc2:                    # pragma: no cover
                print(f"# torch.compile of the MLPs failed too ({type(exc2).__name__}); eager")
                uncompile_mlps(model)
                state["compiled"] = False
                loss = run(x, labels)
        for o in opts:
            o.step()
        return loss

    step.state = state
    return step


_MLPS = ("encoder", "decoder", "classifier")


def compile_mlps(model, mode):
    """Compile the dense MLPs only (the sparse tree rows stay eager: inductor cannot
    handle the sparse gradient of ``nn.Embedding(sparse=True)``)."""
    for name in _MLPS:
        if hasattr(model, name):
            mod = getattr(model, name)
            model._eager_mlps = getattr(model, "_eager_mlps", {})
            model._eager_mlps[name] = mod
            setattr(model, name, torch.compile(mod, mode=mode, dynamic=False))


def uncompile_mlps(model):
    for name, mod in getattr(model, "_eager_mlps", {}).items():
        setattr(model, name, mod)


def build_model(kind, dev, V=55_000, sparse=True):
    """'vae' | 'hierarchical' | 'full' -> model on ``dev``."""
    if kind == "vae":
        return VAE().to(dev)
    return VAEAS(V=V, softmax=kind, sparse=sparse).to(dev)


def time_training(kind, dev, steps, repeats, warmup=3, compile_mode=None, adam="fused",
                  V=55_000, sparse=True, seed=0):
    """Seconds per training step, one value per timed block of ``steps`` steps."""
    torch.manual_seed(seed)
    model = build_model(kind, dev, V, sparse)
    step = make_step(model, model.optimizers(adam), compile_mode)
    x = (torch.rand(B, D, device=dev) < 0.13).float()
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def labels():
        return torch.randint(0, V, (B,), generator=gen).to(dev)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step(x, labels())
    sync(dev)
    warm_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        lab = [labels() for _ in range(steps)]
        sync(dev)
        t = time.perf_counter()
        for i in range(steps):
            step(x, lab[i])
        sync(dev)
        times.append((time.perf_counter() - t) / steps)
    return times, warm_s, step.state["compiled"]


# ----------------------------------------------------------------- evaluation
@torch.inference_mode()
def iwae_nll(model, X, k, chunk_rows=None):
    """Mean importance-weighted NLL (nats) of the rows of X, k samples each, in chunks.

    Per chunk of s samples of all n images: w = log p(x|z) + log p(z) - log q(z|x);
    the chunks' logsumexp are merged with one final logsumexp.
    """
    if chunk_rows is None:                   # a GPU wants large launches; 4,096 rows suit a CPU
        chunk_rows = 2 ** 16 if X.device.type == "cuda" else 4096
    n = X.shape[0]
    mu, logvar = model.encode(X)
    std = torch.exp(0.5 * logvar)
    s = max(1, min(k, chunk_rows // n))
    parts = []
    for s0 in range(0, k, s):
        m = min(s, k - s0)
        eps = torch.randn(n, m, LATENT, device=X.device)
        z = mu[:, None] + std[:, None] * eps
        logits = model.decoder(z.reshape(n * m, LATENT)).reshape(n, m, D)
        ll = -F.binary_cross_entropy_with_logits(
            logits, X[:, None].expand(n, m, D), reduction="none").sum(-1)
        logpz = -0.5 * (z * z).sum(-1)
        logqz = -0.5 * (eps * eps + logvar[:, None]).sum(-1)
        parts.append(torch.logsumexp(ll + logpz - logqz, dim=1))   # constants cancel
    lse = torch.logsumexp(torch.stack(parts, 1), dim=1)
    return float((math.log(k) - lse).mean())


class OneDNNDecoder(nn.Module):
    """The decoder of ``model`` for inference on oneDNN (``torch.utils.mkldnn``): its
    Linear layers on oneDNN's GEMM with weights packed once.  On AMD CPUs PyTorch's
    default CPU GEMM (MKL) runs AVX2 kernels only (MKL_ENABLE_INSTRUCTIONS=AVX512 and
    MKL_DEBUG_CPU_TYPE change nothing, measured); oneDNN dispatches on the CPU's
    features and runs AVX-512 (about 2x MKL's speed at 4,096 x 500 x 500 on a Zen 5
    EPYC).  Inference only: oneDNN tensors have no autograd for training."""

    def __init__(self, decoder):
        super().__init__()
        from torch.utils import mkldnn
        self.decoder = mkldnn.to_mkldnn(decoder)

    def forward(self, z):
        return self.decoder(z.to_mkldnn()).to_dense()


def _block_logsumexp(A, Wt, const):
    """logsumexp_n of the log-densities of a block of points (rows of A = [z^2, z])."""
    return torch.logsumexp(torch.addmm(const, A, Wt, beta=1.0, alpha=-0.5), 1)


_compiled_block = {}


def block_kernel(compile_block):
    """The block kernel, through ``torch.compile`` when asked (eager if that fails).

    Compiled, inductor fuses the GEMM's epilogue with a vectorised exp / sum:
    about 3x faster than eager logsumexp on this CPU (eager ``torch.exp`` measured
    8-35 ns per element here, the compiled reduction ~1.2 ns).
    """
    if not compile_block:
        return _block_logsumexp
    if "fn" not in _compiled_block:
        try:
            _compiled_block["fn"] = torch.compile(_block_logsumexp, dynamic=False)
        except Exception as exc:                         # pragma: no cover
            print(f"# torch.compile unavailable ({type(exc).__name__}: {exc}); eager")
            _compiled_block["fn"] = _block_logsumexp
    return _compiled_block["fn"]


@torch.inference_mode()
def gmm_logdensity(Z, mu, logvar, block_points=None, compile_block=False):
    """log (1/N) sum_n N(Z_m; mu_n, diag exp(logvar_n)) for every row of Z (M,), float64.

    Blocked over points (the last block zero-padded, so one compiled shape);
    inside a block one GEMM gives every squared Mahalanobis distance:
    sum_d (z-mu)^2/var = [z^2, z] . [1/var, -2 mu/var] + sum_d mu^2/var.
    """
    if block_points is None:                 # GPU: fewer, larger launches
        block_points = 2048 if Z.device.type == "cuda" else 256
    N, d = mu.shape
    M = Z.shape[0]
    ivar = torch.exp(-logvar)
    Wt = torch.cat([ivar, -2.0 * mu * ivar], 1).T.contiguous()          # (2d, N)
    const = -0.5 * ((mu * mu * ivar).sum(1) + logvar.sum(1) + d * LOG2PI)   # (N,)
    pad = (-M) % block_points
    A = torch.cat([Z * Z, Z], 1)
    if pad:
        A = torch.cat([A, A.new_zeros(pad, 2 * d)])
    kernel = block_kernel(compile_block)
    out = torch.cat([kernel(A[m0:m0 + block_points], Wt, const)
                     for m0 in range(0, M + pad, block_points)])
    return out[:M].double() - math.log(N)


@torch.inference_mode()
def exact_aggregate_mi_md(mu, logvar, n_points, seed=0, compile_block=False):
    """MI / MD of the aggregate posterior with all N posteriors as the mixture q(z)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    idx = torch.randperm(mu.shape[0], generator=g)[:n_points].to(mu.device)
    m, lv = mu[idx], logvar[idx]
    eps = torch.randn(m.shape, generator=g).to(mu.device)
    z = m + torch.exp(0.5 * lv) * eps
    d = mu.shape[1]
    logq_cond = (-0.5 * (eps * eps + lv + LOG2PI).sum(1)).double()
    logp = (-0.5 * (z * z + LOG2PI).sum(1)).double()
    logq = gmm_logdensity(z, mu, logvar, compile_block=compile_block)
    assert d == z.shape[1]
    return {"mi": float((logq_cond - logq).mean()), "md": float((logq - logp).mean())}


# ----------------------------------------------------------------- softmax kernel
def time_hs_kernel(dev, repeats, steps=50, V=55_000, h=500, sparse=True, seed=0):
    """Seconds per forward + backward + (Sparse)Adam step of the tree softmax alone."""
    torch.manual_seed(seed)
    layer = HierarchicalSoftmax(h, V, sparse).to(dev)
    nn.init.normal_(layer.rows.weight, 0.0, 0.05)
    opt = (torch.optim.SparseAdam(layer.parameters(), lr=1e-3) if sparse
           else make_adam(list(layer.parameters()), "fused"))
    H = torch.randn(B, h, device=dev, requires_grad=True)

    def one(lab):
        opt.zero_grad(set_to_none=True)
        logp = layer(H, lab)
        logp.sum().backward()
        opt.step()

    batches = [torch.randint(0, V, (B,), device=dev) for _ in range(steps)]
    for lab in batches[:3]:
        one(lab)
    times = []
    for _ in range(repeats):
        sync(dev)
        t = time.perf_counter()
        for lab in batches:
            one(lab)
        sync(dev)
        times.append((time.perf_counter() - t) / steps)
    return times
