// CPU kernels of the BN-LSTM (recurrent batch normalisation, Cooijmans et al. 2016, eq. 6-8),
// compiled with plstm_ops.cpp into one extension by plstm_repro/cells/_ext.py.
//
//   bn_forward / bn_backward: one layer over a sequence [T, B, F], statistics per time step:
//     (i, f, g, o) = BN(x_n W_ih^T; gx) + b + BN(h_{n-1} W_hh^T; gh)
//     c_n = sig(f) c_{n-1} + sig(i) tanh(g),  h_n = sig(o) tanh(BN(c_n; gc, bc))
//   In training BN uses the batch moments of the step over the samples still valid there (and
//   returns them: the caller updates the running statistics); in eval the running statistics
//   of step min(n, S - 1). Padded steps keep the state and output 0. The mask must be a prefix
//   mask (valid at n implies valid at n - 1), as lengths give. A training step with fewer than
//   min_count valid samples (a ragged batch's tail) uses the last step's moments that had
//   enough, as constants (see bn_lstm.py: statistics over 2-3 samples blow up the gradient).
//
// The batch statistics need a step's whole [B, 4H] product before any element of it can be
// normalised, so each product is written out (small register-blocked GEMMs on weights packed
// once per call) and the elementwise work follows in a few passes over the step's rows,
// vectorised over neurons. One thread: the samples are coupled at every step through the
// statistics, and a barrier per step costs more than the second core gives (as measured for
// the Phased LSTM's neuron split).

#include <torch/extension.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

using at::Tensor;
using at::vec::Vectorized;

namespace {

template <typename scalar_t>
inline Vectorized<scalar_t> bsigmoid(const Vectorized<scalar_t>& x) {
  const Vectorized<scalar_t> one(scalar_t(1));
  return one / (one + x.neg().exp());
}

template <typename scalar_t>
inline Vectorized<scalar_t> btanh(const Vectorized<scalar_t>& x) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    // As in plstm_ops.cpp: one exp; absolute error ~1e-7, float32 rounding of [-1, 1].
    const Vectorized<scalar_t> one(scalar_t(1)), two(scalar_t(2));
    return one - two / (one + (x + x).exp());
  } else {
    return x.tanh();
  }
}

template <typename scalar_t>
constexpr int64_t lanes() { return Vectorized<scalar_t>::size(); }

// Runs body(j, n) over [0, D) in vectors of L lanes (n < L on the last one).
template <typename scalar_t, typename Fn>
inline void for_lanes(int64_t D, const Fn& body) {
  constexpr int64_t L = lanes<scalar_t>();
  for (int64_t j = 0; j < D; j += L) body(j, std::min<int64_t>(L, D - j));
}

inline bool is_valid(const bool* valid, int64_t b) { return valid == nullptr || valid[b]; }

// acc[D] += sum over the valid rows of v [B, D] (row stride D), row by row: each neuron's sum
// is an independent chain, so the loop runs at load throughput rather than add latency.
template <typename scalar_t>
inline void sum_rows(const scalar_t* v, int64_t B, int64_t D, const bool* valid, scalar_t* acc) {
  using V = Vectorized<scalar_t>;
  for (int64_t b = 0; b < B; ++b) {
    if (!is_valid(valid, b)) continue;
    for_lanes<scalar_t>(D, [&](int64_t j, int64_t n) {
      (V::loadu(acc + j, n) + V::loadu(v + b * D + j, n)).store(acc + j, n);
    });
  }
}

// Batch moments of one step over its N valid rows: mean and biased variance (two passes, as
// the reference's masked formula; a step without valid rows gets 0 and 0, its denominators
// clamped to 1 as there). rstd = 1 / sqrt(var + eps).
template <typename scalar_t>
void batch_moments(const scalar_t* v, int64_t B, int64_t D, const bool* valid, int64_t N,
                   double eps, scalar_t* mean, scalar_t* var, scalar_t* rstd) {
  using V = Vectorized<scalar_t>;
  const V den(static_cast<scalar_t>(std::max<int64_t>(N, 1)));
  std::fill(mean, mean + D, scalar_t(0));
  std::fill(var, var + D, scalar_t(0));
  sum_rows(v, B, D, valid, mean);
  for_lanes<scalar_t>(D, [&](int64_t j, int64_t n) {
    (V::loadu(mean + j, n) / den).store(mean + j, n);
  });
  for (int64_t b = 0; b < B; ++b) {
    if (!is_valid(valid, b)) continue;
    for_lanes<scalar_t>(D, [&](int64_t j, int64_t n) {
      const V d = V::loadu(v + b * D + j, n) - V::loadu(mean + j, n);
      (V::loadu(var + j, n) + d * d).store(var + j, n);
    });
  }
  const V one(scalar_t(1)), e(static_cast<scalar_t>(eps));
  for_lanes<scalar_t>(D, [&](int64_t j, int64_t n) {
    const V s = V::loadu(var + j, n) / den;
    s.store(var + j, n);
    (one / (s + e).sqrt()).store(rstd + j, n);
  });
}

// rstd = 1 / sqrt(var + eps) of running variances (eval).
template <typename scalar_t>
void running_rstd(const scalar_t* var, int64_t D, double eps, scalar_t* rstd) {
  using V = Vectorized<scalar_t>;
  const V one(scalar_t(1)), e(static_cast<scalar_t>(eps));
  for_lanes<scalar_t>(D, [&](int64_t j, int64_t n) {
    (one / (V::loadu(var + j, n) + e).sqrt()).store(rstd + j, n);
  });
}

// A new tensor for what the forward keeps for the backward. Large ones are asked for 2 MB pages
// (a hint, Linux only) before anything touches them: fresh 4 KB pages cost a fault each, about
// a third of the forward's time at T = 500 when measured.
inline Tensor empty_saved(at::IntArrayRef size, const at::TensorOptions& opt) {
  Tensor t = at::empty(size, opt);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const uintptr_t a = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (a + kHuge - 1) & ~(kHuge - 1), hi = (a + t.nbytes()) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
  return t;
}

inline int64_t count_valid(const bool* valid, int64_t B) {
  if (valid == nullptr) return B;
  return std::count(valid, valid + B, true);
}

// ---------------------------------------------------------------------------------------------
// Small products. Each step multiplies a [B, K] block (B = 32 rows) by a weight matrix; ATen's
// GEMM spends much of such a call packing the weights and scaling the output, and with K or N
// of 2 (the sines' inputs) it is slower than the whole recurrence. The weights are packed once
// per call instead, into panels of L columns (p[jb][k][l], zero past N), and an R x C register
// tile of outputs is accumulated over the whole reduction.

inline int64_t num_blocks(int64_t n, int64_t L) { return (n + L - 1) / L; }

// Panels of W^T for v W^T, W [N, K] row-major.
template <typename scalar_t>
std::vector<scalar_t> pack_transposed(const scalar_t* w, int64_t N, int64_t K) {
  constexpr int64_t L = lanes<scalar_t>();
  std::vector<scalar_t> p(static_cast<size_t>(num_blocks(N, L) * K * L), scalar_t(0));
  for (int64_t j = 0; j < N; ++j)
    for (int64_t k = 0; k < K; ++k) p[((j / L) * K + k) * L + j % L] = w[j * K + k];
  return p;
}

// Panels of W for d W, W [K, N] row-major.
template <typename scalar_t>
std::vector<scalar_t> pack_plain(const scalar_t* w, int64_t K, int64_t N) {
  constexpr int64_t L = lanes<scalar_t>();
  std::vector<scalar_t> p(static_cast<size_t>(num_blocks(N, L) * K * L), scalar_t(0));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) p[((j / L) * K + k) * L + j % L] = w[k * N + j];
  return p;
}

// c [R rows][C vectors] (= or +=) a [R, K] (row stride lda) times C panels from bp (panel
// stride K L); ncols valid columns (the last vector may be partial).
template <typename scalar_t, int R, int C>
inline void tile_nn(int64_t K, const scalar_t* a, int64_t lda, const scalar_t* bp,
                    scalar_t* c, int64_t ldc, int64_t ncols, bool acc) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  V t[R][C];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q)
      t[r][q] = acc ? V::loadu(c + r * ldc + q * L, std::min<int64_t>(L, ncols - q * L))
                    : V(scalar_t(0));
  for (int64_t k = 0; k < K; ++k) {
    V bv[C];
    for (int q = 0; q < C; ++q) bv[q] = V::loadu(bp + q * K * L + k * L);
    for (int r = 0; r < R; ++r) {
      const V av(a[r * lda + k]);
      for (int q = 0; q < C; ++q) t[r][q] = at::vec::fmadd(av, bv[q], t[r][q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q)
      t[r][q].store(c + r * ldc + q * L, std::min<int64_t>(L, ncols - q * L));
}

// tile_nn with rows <= R and vectors <= C chosen at run time (the edges of the matrix).
template <typename scalar_t, int R, int C>
inline void tile_nn_edge(int64_t rows, int64_t vecs, int64_t K, const scalar_t* a, int64_t lda,
                         const scalar_t* bp, scalar_t* c, int64_t ldc, int64_t ncols, bool acc) {
  if constexpr (R > 1) {
    if (rows < R)
      return tile_nn_edge<scalar_t, R - 1, C>(rows, vecs, K, a, lda, bp, c, ldc, ncols, acc);
  }
  if constexpr (C > 1) {
    if (vecs < C)
      return tile_nn_edge<scalar_t, R, C - 1>(rows, vecs, K, a, lda, bp, c, ldc, ncols, acc);
  }
  tile_nn<scalar_t, R, C>(K, a, lda, bp, c, ldc, ncols, acc);
}

// c [M, N] (= or +=) a [M, K] B, B packed in panels (pack_transposed / pack_plain).
template <typename scalar_t, int R, int C>
void gemm_nn(int64_t M, int64_t N, int64_t K, const scalar_t* a, int64_t lda,
             const scalar_t* bp, scalar_t* c, int64_t ldc, bool acc) {
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t nb = num_blocks(N, L);
  for (int64_t jb = 0; jb < nb; jb += C) {
    const int64_t vecs = std::min<int64_t>(C, nb - jb), ncols = std::min(N - jb * L, vecs * L);
    for (int64_t r0 = 0; r0 < M; r0 += R)
      tile_nn_edge<scalar_t, R, C>(std::min<int64_t>(R, M - r0), vecs, K, a + r0 * lda, lda,
                                   bp + jb * K * L, c + r0 * ldc + jb * L, ldc, ncols, acc);
  }
}

// dW [R rows][C vectors] += sum_k a[k][r] b[k][q L ..] (a: rows of d pre-activations, stride lda;
// b: rows of inputs, stride ldb, zero-padded to whole vectors): a tile of a weight gradient.
template <typename scalar_t, int R, int C>
inline void tile_tn(int64_t K, const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb,
                    scalar_t* c, int64_t ldc) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  V t[R][C];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) t[r][q] = V::loadu(c + r * ldc + q * L);
  for (int64_t k = 0; k < K; ++k) {
    V bv[C];
    for (int q = 0; q < C; ++q) bv[q] = V::loadu(b + k * ldb + q * L);
    for (int r = 0; r < R; ++r) {
      const V av(a[k * lda + r]);
      for (int q = 0; q < C; ++q) t[r][q] = at::vec::fmadd(av, bv[q], t[r][q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) t[r][q].store(c + r * ldc + q * L);
}

template <typename scalar_t, int R, int C>
inline void tile_tn_edge(int64_t rows, int64_t K, const scalar_t* a, int64_t lda,
                         const scalar_t* b, int64_t ldb, scalar_t* c, int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return tile_tn_edge<scalar_t, R - 1, C>(rows, K, a, lda, b, ldb, c, ldc);
  }
  tile_tn<scalar_t, R, C>(K, a, lda, b, ldb, c, ldc);
}

// dW [M, Np] += A^T Bm: A [K, M] (row stride lda), Bm [K, Np] (Np a multiple of L).
template <typename scalar_t>
void gemm_tn(int64_t K, int64_t M, int64_t Np, const scalar_t* a, int64_t lda,
             const scalar_t* b, scalar_t* c) {
  constexpr int64_t L = lanes<scalar_t>();
  constexpr int kR = 6;  // 6 x 2 accumulators, 2 loads and a broadcast: 15 of 16 registers
  for (int64_t j0 = 0; j0 < Np; j0 += 2 * L) {
    const bool two = j0 + 2 * L <= Np;
    for (int64_t q0 = 0; q0 < M; q0 += kR) {
      const int64_t rows = std::min<int64_t>(kR, M - q0);
      scalar_t* ct = c + q0 * Np + j0;
      if (two) tile_tn_edge<scalar_t, kR, 2>(rows, K, a + q0, lda, b + j0, Np, ct, Np);
      else tile_tn_edge<scalar_t, kR, 1>(rows, K, a + q0, lda, b + j0, Np, ct, Np);
    }
  }
}

// Rows of v [B, n] into dst [B, np], zero-padded from n to np.
template <typename scalar_t>
inline void copy_padded(const scalar_t* v, int64_t B, int64_t n, int64_t np, scalar_t* dst) {
  for (int64_t b = 0; b < B; ++b) {
    std::copy(v + b * n, v + b * n + n, dst + b * np);
    std::fill(dst + b * np + n, dst + (b + 1) * np, scalar_t(0));
  }
}

// Tile shapes: forward products have N = 4H outputs and K = H or F; the backward's d h
// products N = H (or F) and K = 4H, where 2 panels of 4H x L stay in L1.
constexpr int kRowsF = 4, kVecsF = 3, kRowsB = 6, kVecsB = 2;

// ---------------------------------------------------------------------------------------------

// Inputs of one layer, unpacked once.
struct Layer {
  Tensor x, mask, w_ih, w_hh, bias, gx, gh, gc, bc;
};

template <typename scalar_t>
std::vector<Tensor> bn_forward_impl(const Layer& p, const Tensor& h0, const Tensor& c0,
                                    const std::vector<Tensor>& running, double eps_x,
                                    double eps_h, double eps_c, bool train, bool save,
                                    int64_t min_count) {
  using V = Vectorized<scalar_t>;
  const int64_t T = p.x.size(0), B = p.x.size(1), F = p.x.size(2), H = p.w_hh.size(1);
  const int64_t G = 4 * H, S = B * H;
  const auto opt = p.x.options();
  const int64_t Ts = save ? T : 1;          // steps kept for the backward (else scratch)
  Tensor xs = empty_saved({Ts, B, G}, opt);   // x W_ih^T, normalised in place: x^
  Tensor hs = empty_saved({Ts, B, G}, opt);   // h W_hh^T, normalised in place: h^
  Tensor acts = empty_saved({Ts, B, G}, opt); // sig(i), sig(f), tanh(g), sig(o)
  Tensor chat = empty_saved({Ts, B, H}, opt); // c^
  Tensor th = empty_saved({Ts, B, H}, opt);   // tanh(gc c^ + bc)
  Tensor cs = save ? empty_saved({T, B, H}, opt) : Tensor();  // c after each step
  Tensor rx = at::empty({Ts, G}, opt), rh = at::empty({Ts, G}, opt), rc = at::empty({Ts, H}, opt);
  // Batch moments (train): mean, biased var of x W_ih^T, h W_hh^T, c per step; valid counts.
  const int64_t Tm = train ? T : 0;
  Tensor mx = at::empty({Tm, G}, opt), vx = at::empty({Tm, G}, opt);
  Tensor mh = at::empty({Tm, G}, opt), vh = at::empty({Tm, G}, opt);
  Tensor mc = at::empty({Tm, H}, opt), vc = at::empty({Tm, H}, opt);
  Tensor counts = at::empty({T}, opt);
  Tensor out = empty_saved({T, B, H}, opt);
  Tensor h = h0.clone(), c = c0.clone();
  std::vector<scalar_t> cn(static_cast<size_t>(S));
  const std::vector<scalar_t> wip = pack_transposed(p.w_ih.data_ptr<scalar_t>(), G, F);
  const std::vector<scalar_t> whp = pack_transposed(p.w_hh.data_ptr<scalar_t>(), G, H);

  const bool* mp = p.mask.numel() ? p.mask.data_ptr<bool>() : nullptr;
  const scalar_t* xp = p.x.data_ptr<scalar_t>();
  const scalar_t *gx = p.gx.data_ptr<scalar_t>(), *gh = p.gh.data_ptr<scalar_t>();
  const scalar_t *gc = p.gc.data_ptr<scalar_t>(), *bcp = p.bc.data_ptr<scalar_t>();
  const scalar_t* bias = p.bias.data_ptr<scalar_t>();
  scalar_t *hp = h.data_ptr<scalar_t>(), *cp = c.data_ptr<scalar_t>();
  scalar_t *cnp = cn.data(), *outp = out.data_ptr<scalar_t>();
  scalar_t* countp = counts.data_ptr<scalar_t>();
  const int64_t Sr = train ? 0 : running[0].size(0);  // running statistics' steps (eval)
  int64_t last = -1;  // the last step with min_count valid rows: its moments serve the tail

  for (int64_t n = 0; n < T; ++n) {
    const bool* valid = mp ? mp + n * B : nullptr;
    const int64_t N = count_valid(valid, B);
    // too few rows for statistics: the last good step's moments, as constants; count 0 (the
    // running statistics skip the step)
    const bool borrow = train && N < min_count && last >= 0;
    countp[n] = static_cast<scalar_t>(borrow ? 0 : N);
    const int64_t s = save ? n : 0, idx = std::min<int64_t>(n, Sr - 1);
    scalar_t* xh = xs.data_ptr<scalar_t>() + s * B * G;
    scalar_t* hh = hs.data_ptr<scalar_t>() + s * B * G;
    gemm_nn<scalar_t, kRowsF, kVecsF>(B, G, F, xp + n * B * F, F, wip.data(), xh, G, false);
    gemm_nn<scalar_t, kRowsF, kVecsF>(B, G, H, hp, H, whp.data(), hh, G, false);
    scalar_t *rxs = rx.data_ptr<scalar_t>() + s * G, *rhs = rh.data_ptr<scalar_t>() + s * G;
    scalar_t* rcs = rc.data_ptr<scalar_t>() + s * H;
    const scalar_t *mxs, *mhs, *mcs;
    if (train) {
      scalar_t* m1 = mx.data_ptr<scalar_t>() + n * G;
      scalar_t* m2 = mh.data_ptr<scalar_t>() + n * G;
      scalar_t* v1 = vx.data_ptr<scalar_t>() + n * G;
      scalar_t* v2 = vh.data_ptr<scalar_t>() + n * G;
      if (borrow) {
        std::copy_n(mx.data_ptr<scalar_t>() + last * G, G, m1);
        std::copy_n(vx.data_ptr<scalar_t>() + last * G, G, v1);
        std::copy_n(mh.data_ptr<scalar_t>() + last * G, G, m2);
        std::copy_n(vh.data_ptr<scalar_t>() + last * G, G, v2);
        running_rstd(v1, G, eps_x, rxs);
        running_rstd(v2, G, eps_h, rhs);
      } else {
        batch_moments(xh, B, G, valid, N, eps_x, m1, v1, rxs);
        batch_moments(hh, B, G, valid, N, eps_h, m2, v2, rhs);
      }
      mxs = m1;
      mhs = m2;
    } else {
      mxs = running[0].data_ptr<scalar_t>() + idx * G;
      mhs = running[2].data_ptr<scalar_t>() + idx * G;
      running_rstd(running[1].data_ptr<scalar_t>() + idx * G, G, eps_x, rxs);
      running_rstd(running[3].data_ptr<scalar_t>() + idx * G, G, eps_h, rhs);
    }
    scalar_t* act = acts.data_ptr<scalar_t>() + s * B * G;
    // Normalisation, gates and the candidate cell of each valid row; x^ and h^ replace the
    // products in place. Padded rows: 0 in everything kept.
    for (int64_t b = 0; b < B; ++b) {
      scalar_t *ab = act + b * G, *xb = xh + b * G, *hb = hh + b * G;
      if (!is_valid(valid, b)) {
        for (scalar_t* v : {ab, xb, hb}) std::fill(v, v + G, scalar_t(0));
        continue;
      }
      for_lanes<scalar_t>(H, [&](int64_t j, int64_t nl) {
        V z[4];
        for (int q = 0; q < 4; ++q) {
          const int64_t o = q * H + j;
          const V xn = (V::loadu(xb + o, nl) - V::loadu(mxs + o, nl)) * V::loadu(rxs + o, nl);
          const V hn = (V::loadu(hb + o, nl) - V::loadu(mhs + o, nl)) * V::loadu(rhs + o, nl);
          xn.store(xb + o, nl);
          hn.store(hb + o, nl);
          // ((x^ gx) + b) + h^ gh: the reference's order of operations
          z[q] = (xn * V::loadu(gx + o, nl) + V::loadu(bias + o, nl)) + hn * V::loadu(gh + o, nl);
        }
        const V i = bsigmoid(z[0]), f = bsigmoid(z[1]), g = btanh(z[2]), o = bsigmoid(z[3]);
        (f * V::loadu(cp + b * H + j, nl) + i * g).store(cnp + b * H + j, nl);
        i.store(ab + j, nl);
        f.store(ab + H + j, nl);
        g.store(ab + 2 * H + j, nl);
        o.store(ab + 3 * H + j, nl);
      });
    }
    if (train) {
      scalar_t* m3 = mc.data_ptr<scalar_t>() + n * H;
      scalar_t* v3 = vc.data_ptr<scalar_t>() + n * H;
      if (borrow) {
        std::copy_n(mc.data_ptr<scalar_t>() + last * H, H, m3);
        std::copy_n(vc.data_ptr<scalar_t>() + last * H, H, v3);
        running_rstd(v3, H, eps_c, rcs);
      } else {
        batch_moments(cnp, B, H, valid, N, eps_c, m3, v3, rcs);
        last = n;
      }
      mcs = m3;
    } else {
      mcs = running[4].data_ptr<scalar_t>() + idx * H;
      running_rstd(running[5].data_ptr<scalar_t>() + idx * H, H, eps_c, rcs);
    }
    scalar_t* chs = chat.data_ptr<scalar_t>() + s * S;
    scalar_t* ths = th.data_ptr<scalar_t>() + s * S;
    scalar_t* outn = outp + n * S;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t o = b * H;
      if (!is_valid(valid, b)) {  // padded: state kept, output 0
        for (scalar_t* v : {outn + o, chs + o, ths + o}) std::fill(v, v + H, scalar_t(0));
        continue;
      }
      const scalar_t* og = act + b * G + 3 * H;
      for_lanes<scalar_t>(H, [&](int64_t j, int64_t nl) {
        const V cv = V::loadu(cnp + o + j, nl);
        const V ch = (cv - V::loadu(mcs + j, nl)) * V::loadu(rcs + j, nl);
        const V t = btanh(ch * V::loadu(gc + j, nl) + V::loadu(bcp + j, nl));
        const V hv = V::loadu(og + j, nl) * t;
        ch.store(chs + o + j, nl);
        t.store(ths + o + j, nl);
        cv.store(cp + o + j, nl);
        hv.store(hp + o + j, nl);
        hv.store(outn + o + j, nl);
      });
    }
    if (save) std::copy(cp, cp + S, cs.data_ptr<scalar_t>() + n * S);
  }
  std::vector<Tensor> res = {out, h, c, mx, vx, mh, vh, mc, vc, counts};
  if (save) {
    for (const Tensor& v : {xs, hs, acts, cs, chat, th, rx, rh, rc}) res.push_back(v);
  }
  return res;
}

template <typename scalar_t>
std::vector<Tensor> bn_backward_impl(const Tensor& gout, const Tensor& ghn, const Tensor& gcn,
                                     const Layer& p, const Tensor& h0, const Tensor& c0,
                                     const Tensor& out, const std::vector<Tensor>& sv,
                                     bool train, int64_t min_count) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = lanes<scalar_t>();
  const Tensor &xs = sv[0], &hs = sv[1], &acts = sv[2], &cs = sv[3], &chat = sv[4], &th = sv[5];
  const Tensor &rx = sv[6], &rh = sv[7], &rc = sv[8];
  const int64_t T = p.x.size(0), B = p.x.size(1), F = p.x.size(2), H = p.w_hh.size(1);
  const int64_t G = 4 * H, S = B * H;
  const int64_t Hp = num_blocks(H, L) * L, Fp = num_blocks(F, L) * L;
  const auto opt = out.options();
  Tensor dh = ghn.clone(), dc = gcn.clone();
  Tensor dx = at::empty({T, B, F}, opt);
  // Per step: d pre-activations, d of the projections (x W_ih^T, h W_hh^T), padded h_{n-1}, x_n.
  std::vector<scalar_t> dz(static_cast<size_t>(B * G)), dbcv(static_cast<size_t>(S));
  std::vector<scalar_t> dax(static_cast<size_t>(B * G)), dah(static_cast<size_t>(B * G));
  std::vector<scalar_t> hpad(static_cast<size_t>(B * Hp)), xpad(static_cast<size_t>(B * Fp));
  // Weight gradients, padded to whole vectors, summed in scalar_t as a GEMM would.
  std::vector<scalar_t> dwh(static_cast<size_t>(G * Hp), 0), dwi(static_cast<size_t>(G * Fp), 0);
  // Per step: sums over the valid rows (scalar_t); over steps: float64.
  std::vector<scalar_t> s1c(H), s2c(H), s1(G), s2x(G), s2h(G);
  std::vector<double> a_gc(H, 0.0), a_bc(H, 0.0), a_gx(G, 0.0), a_gh(G, 0.0), a_b(G, 0.0);
  const std::vector<scalar_t> whp = pack_plain(p.w_hh.data_ptr<scalar_t>(), G, H);
  const std::vector<scalar_t> wip = pack_plain(p.w_ih.data_ptr<scalar_t>(), G, F);
  const bool* mp = p.mask.numel() ? p.mask.data_ptr<bool>() : nullptr;
  const scalar_t *gx = p.gx.data_ptr<scalar_t>(), *gh = p.gh.data_ptr<scalar_t>();
  const scalar_t* gc = p.gc.data_ptr<scalar_t>();
  const scalar_t *go = gout.data_ptr<scalar_t>(), *c0p = c0.data_ptr<scalar_t>();
  const scalar_t *xp = p.x.data_ptr<scalar_t>(), *outp = out.data_ptr<scalar_t>();
  const scalar_t* h0p = h0.data_ptr<scalar_t>();
  scalar_t *dhp = dh.data_ptr<scalar_t>(), *dcp = dc.data_ptr<scalar_t>();
  scalar_t* dxp = dx.data_ptr<scalar_t>();
  const V one(scalar_t(1));

  for (int64_t n = T - 1; n >= 0; --n) {
    const bool* valid = mp ? mp + n * B : nullptr;
    const int64_t N = count_valid(valid, B);
    // the step's own batch statistics (else constants: see bn_forward_impl)
    const bool own = train && N >= min_count;
    const V invN(scalar_t(1) / static_cast<scalar_t>(std::max<int64_t>(N, 1)));
    const scalar_t* xh = xs.data_ptr<scalar_t>() + n * B * G;
    const scalar_t* hh = hs.data_ptr<scalar_t>() + n * B * G;
    const scalar_t* act = acts.data_ptr<scalar_t>() + n * B * G;
    const scalar_t *chs = chat.data_ptr<scalar_t>() + n * S, *ths = th.data_ptr<scalar_t>() + n * S;
    const scalar_t* cprev = n ? cs.data_ptr<scalar_t>() + (n - 1) * S : c0p;
    const scalar_t *rxs = rx.data_ptr<scalar_t>() + n * G, *rhs = rh.data_ptr<scalar_t>() + n * G;
    const scalar_t* rcs = rc.data_ptr<scalar_t>() + n * H;
    for (auto* v : {&s1c, &s2c, &s1, &s2x, &s2h}) std::fill(v->begin(), v->end(), scalar_t(0));
    // 1. h = o tanh(bn_c): d bn_c output and d o's pre-activation; sums for BN_c.
    for (int64_t b = 0; b < B; ++b) {
      if (!is_valid(valid, b)) continue;
      const int64_t o = b * H;
      const scalar_t* og = act + b * G + 3 * H;
      scalar_t* dzo = dz.data() + b * G + 3 * H;
      for_lanes<scalar_t>(H, [&](int64_t j, int64_t nl) {
        const V dhv = V::loadu(dhp + o + j, nl) + V::loadu(go + n * S + o + j, nl);
        const V t = V::loadu(ths + o + j, nl), ov = V::loadu(og + j, nl);
        const V dy = dhv * ov * (one - t * t);
        (dhv * t * ov * (one - ov)).store(dzo + j, nl);
        dy.store(dbcv.data() + o + j, nl);
        (V::loadu(s1c.data() + j, nl) + dy).store(s1c.data() + j, nl);
        (V::loadu(s2c.data() + j, nl) + dy * V::loadu(chs + o + j, nl)).store(s2c.data() + j, nl);
      });
    }
    // 2. Through BN_c (batch statistics in train) into c, then the gates i, f, g.
    for (int64_t b = 0; b < B; ++b) {
      if (!is_valid(valid, b)) continue;
      const int64_t o = b * H;
      const scalar_t* ab = act + b * G;
      scalar_t* dzb = dz.data() + b * G;
      for_lanes<scalar_t>(H, [&](int64_t j, int64_t nl) {
        const V dy = V::loadu(dbcv.data() + o + j, nl);
        const V a = V::loadu(gc + j, nl) * V::loadu(rcs + j, nl);
        V dv = dy;
        if (own)
          dv = dy - V::loadu(s1c.data() + j, nl) * invN -
               V::loadu(chs + o + j, nl) * (V::loadu(s2c.data() + j, nl) * invN);
        const V dcn = V::loadu(dcp + o + j, nl) + a * dv;
        const V i = V::loadu(ab + j, nl), f = V::loadu(ab + H + j, nl);
        const V g = V::loadu(ab + 2 * H + j, nl);
        (dcn * g * i * (one - i)).store(dzb + j, nl);
        (dcn * V::loadu(cprev + o + j, nl) * f * (one - f)).store(dzb + H + j, nl);
        (dcn * i * (one - g * g)).store(dzb + 2 * H + j, nl);
        (dcn * f).store(dcp + o + j, nl);
      });
      for_lanes<scalar_t>(G, [&](int64_t j, int64_t nl) {
        const V d = V::loadu(dzb + j, nl);
        (V::loadu(s1.data() + j, nl) + d).store(s1.data() + j, nl);
        (V::loadu(s2x.data() + j, nl) + d * V::loadu(xh + b * G + j, nl)).store(s2x.data() + j, nl);
        (V::loadu(s2h.data() + j, nl) + d * V::loadu(hh + b * G + j, nl)).store(s2h.data() + j, nl);
      });
    }
    // 3. Through BN_x and BN_h to the projections (0 on padded rows).
    for (int64_t b = 0; b < B; ++b) {
      scalar_t *dxb = dax.data() + b * G, *dhb = dah.data() + b * G;
      if (!is_valid(valid, b)) {
        std::fill(dxb, dxb + G, scalar_t(0));
        std::fill(dhb, dhb + G, scalar_t(0));
        continue;
      }
      std::fill(dhp + b * H, dhp + (b + 1) * H, scalar_t(0));  // the product below refills it
      const scalar_t* dzb = dz.data() + b * G;
      for_lanes<scalar_t>(G, [&](int64_t j, int64_t nl) {
        const V d = V::loadu(dzb + j, nl);
        V ux = d, uh = d;
        if (own) {
          const V m1 = V::loadu(s1.data() + j, nl) * invN;
          ux = d - m1 - V::loadu(xh + b * G + j, nl) * (V::loadu(s2x.data() + j, nl) * invN);
          uh = d - m1 - V::loadu(hh + b * G + j, nl) * (V::loadu(s2h.data() + j, nl) * invN);
        }
        (V::loadu(gx + j, nl) * V::loadu(rxs + j, nl) * ux).store(dxb + j, nl);
        (V::loadu(gh + j, nl) * V::loadu(rhs + j, nl) * uh).store(dhb + j, nl);
      });
    }
    // 4. d h_{n-1} = d(h W_hh^T) W_hh on valid rows (the carry stays on padded ones: their
    // state was kept), d x_n = d(x W_ih^T) W_ih; d W += d^T [h_{n-1} | x_n]. h_{n-1} is
    // out[n - 1] (h0 at n = 0) wherever d(h W_hh^T) is not 0: valid rows were valid before.
    gemm_nn<scalar_t, kRowsB, kVecsB>(B, H, G, dah.data(), G, whp.data(), dhp, H, true);
    gemm_nn<scalar_t, kRowsB, kVecsB>(B, F, G, dax.data(), G, wip.data(), dxp + n * B * F, F,
                                      false);
    copy_padded(n ? outp + (n - 1) * S : h0p, B, H, Hp, hpad.data());
    copy_padded(xp + n * B * F, B, F, Fp, xpad.data());
    gemm_tn<scalar_t>(B, G, Hp, dah.data(), G, hpad.data(), dwh.data());
    gemm_tn<scalar_t>(B, G, Fp, dax.data(), G, xpad.data(), dwi.data());
    for (int64_t j = 0; j < H; ++j) {
      a_gc[j] += s2c[j];
      a_bc[j] += s1c[j];
    }
    for (int64_t j = 0; j < G; ++j) {
      a_b[j] += s1[j];
      a_gx[j] += s2x[j];
      a_gh[j] += s2h[j];
    }
  }
  Tensor dw_hh = at::empty({G, H}, opt), dw_ih = at::empty({G, F}, opt);
  for (int64_t q = 0; q < G; ++q) {
    std::copy(dwh.data() + q * Hp, dwh.data() + q * Hp + H, dw_hh.data_ptr<scalar_t>() + q * H);
    std::copy(dwi.data() + q * Fp, dwi.data() + q * Fp + F, dw_ih.data_ptr<scalar_t>() + q * F);
  }
  auto to_tensor = [&](const std::vector<double>& v) {
    return at::tensor(at::ArrayRef<double>(v), at::TensorOptions().dtype(at::kDouble))
        .to(opt.dtype());
  };
  return {dx, dw_ih, dw_hh, to_tensor(a_b), to_tensor(a_gx), to_tensor(a_gh), to_tensor(a_gc),
          to_tensor(a_bc), dh, dc};
}

void check_cpu(const Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), name, " must be a contiguous CPU tensor");
}

Layer make_layer(const Tensor& x, const Tensor& mask, const Tensor& w_ih, const Tensor& w_hh,
                 const Tensor& bias, const Tensor& gx, const Tensor& gh, const Tensor& gc,
                 const Tensor& bc) {
  for (const Tensor* t : {&x, &w_ih, &w_hh, &bias, &gx, &gh, &gc, &bc}) check_cpu(*t, "bn input");
  TORCH_CHECK(x.dim() == 3, "bn: x must be [T, B, F]");
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(1);
  TORCH_CHECK(mask.numel() == 0 || (mask.scalar_type() == at::kBool && mask.numel() == T * B &&
                                    mask.is_contiguous()),
              "bn: mask must be empty or a contiguous bool [T, B]");
  TORCH_CHECK(w_hh.size(0) == 4 * H && w_ih.size(0) == 4 * H && w_ih.size(1) == x.size(2),
              "bn: weights must be [4H, F] and [4H, H]");
  TORCH_CHECK(bias.numel() == 4 * H && gx.numel() == 4 * H && gh.numel() == 4 * H &&
                  gc.numel() == H && bc.numel() == H,
              "bn: bias, gamma_x, gamma_h must have 4H values, gamma_c, beta_c H");
  for (const Tensor* t : {&w_ih, &w_hh, &bias, &gx, &gh, &gc, &bc})
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "bn: all tensors must have x's dtype");
  return {x, mask, w_ih, w_hh, bias, gx, gh, gc, bc};
}

}  // namespace

// x [T, B, F], mask [T, B] bool (prefix) or empty, w_ih [4H, F], w_hh [4H, H], bias, gx, gh [4H],
// gc, bc [H], h0, c0 [B, H]; running = 6 tensors (mean, var of x, h, c; [S, 4H] / [S, H]) in
// eval, none in train. Returns out [T, B, H], h_n, c_n, the batch moments (mean_x, var_x,
// mean_h, var_h, mean_c, var_c: [T, D], empty in eval), counts [T] (0 where a train step had
// fewer than min_count valid rows and used the last such step's moments); with save, what
// bn_backward takes: x^, h^, activations, c, c^, tanh(bn_c), rstd_x, rstd_h, rstd_c.
std::vector<Tensor> bn_forward(Tensor x, Tensor mask, Tensor w_ih, Tensor w_hh, Tensor bias,
                               Tensor gx, Tensor gh, Tensor gc, Tensor bc, Tensor h0, Tensor c0,
                               std::vector<Tensor> running, double eps_x, double eps_h,
                               double eps_c, bool train, bool save, int64_t min_count) {
  const Layer p = make_layer(x, mask, w_ih, w_hh, bias, gx, gh, gc, bc);
  check_cpu(h0, "bn h0");
  check_cpu(c0, "bn c0");
  TORCH_CHECK(train || running.size() == 6, "bn: eval needs the 6 running statistics");
  for (const Tensor& r : running) check_cpu(r, "bn running statistics");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn_forward", [&] {
    res = bn_forward_impl<scalar_t>(p, h0, c0, running, eps_x, eps_h, eps_c, train, save,
                                    min_count);
  });
  return res;
}

// Gradients (d x, d w_ih, d w_hh, d bias, d gx, d gh, d gc, d bc, d h0, d c0) from the output
// gradients gout [T, B, H], ghn, gcn [B, H] and the 9 tensors bn_forward saved.
std::vector<Tensor> bn_backward(Tensor gout, Tensor ghn, Tensor gcn, Tensor x, Tensor mask,
                                Tensor w_ih, Tensor w_hh, Tensor bias, Tensor gx, Tensor gh,
                                Tensor gc, Tensor bc, Tensor h0, Tensor c0, Tensor out,
                                std::vector<Tensor> saved, bool train, int64_t min_count) {
  const Layer p = make_layer(x, mask, w_ih, w_hh, bias, gx, gh, gc, bc);
  for (const Tensor* t : {&gout, &ghn, &gcn, &h0, &c0, &out}) check_cpu(*t, "bn_backward input");
  TORCH_CHECK(saved.size() == 9, "bn_backward: expected the 9 saved tensors");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn_backward", [&] {
    res = bn_backward_impl<scalar_t>(gout, ghn, gcn, p, h0, c0, out, saved, train, min_count);
  });
  return res;
}

void register_bnlstm_ops(pybind11::module_& m) {
  m.def("bn_forward", &bn_forward, "BN-LSTM layer forward (per-step batch norm)");
  m.def("bn_backward", &bn_backward, "BN-LSTM layer BPTT");
}
