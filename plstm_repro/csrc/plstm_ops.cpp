// CPU kernels of the Phased LSTM (Neil et al. 2016, eq. 6-10), built lazily by
// plstm_repro/cells/_ext.py with torch.utils.cpp_extension.
//
//   fused_forward / fused_backward: one layer over a sequence (training, and dense inference).
//     Each step is one register-blocked product [h_{n-1}, x_n] [W_hh; W_ih]^T + b fused with the
//     elementwise pass, which also computes the time gate. The backward is hand-written BPTT
//     reusing what the forward saved; it accumulates d tau, d shift, d r_on and d b in float64.
//   sparse_forward: event-driven inference (leak 0): at each step only neurons whose gate is
//     open (k > 0) are computed, from their rows of W_ih and W_hh; closed ones keep their state.
//
// Never build with -ffast-math: an approximate division moves floor((t - s) / tau) near the wrap.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

using at::Tensor;
using at::vec::Vectorized;

namespace {

// torch.remainder on doubles (floor-mod), exactly as ATen computes it.
inline double torch_remainder(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((b < 0) != (m < 0))) m += b;
  return m;
}

// Branch of eq. 6 taken, kept for the backward: 0 padded step, 1 rising, 2 falling, 3 closed.
struct Gate {
  double k;
  int8_t code;
};

// Per-neuron constants of eq. 6 in float64, computed once per call: the reciprocals turn the
// per-step divisions into multiplications (the remainder itself stays exact, see time_gate).
struct GateParams {
  std::vector<double> tau, inv_tau, shift, r, two_r;
  GateParams(const Tensor& tau_, const Tensor& shift_, const Tensor& r_) {
    const int64_t H = tau_.numel();
    const double *tp = tau_.data_ptr<double>(), *sp = shift_.data_ptr<double>();
    const double* rp = r_.data_ptr<double>();
    tau.assign(tp, tp + H);
    shift.assign(sp, sp + H);
    r.assign(rp, rp + H);
    for (int64_t j = 0; j < H; ++j) {
      inv_tau.push_back(1.0 / tp[j]);
      two_r.push_back(2.0 / rp[j]);
    }
  }
};

// k of eq. 6 with phi = ((t - s) mod tau) / tau in float64 (time_gate() in functional.py).
inline Gate time_gate(double t, const GateParams& p, int64_t j, double leak) {
  const double tau = p.tau[j], d = t - p.shift[j];
  // Exact remainder, fast: with q the true floor quotient, d - q tau is representable and the
  // fma returns it exactly. A q off by one lands outside [0, tau): then use fmod (exact).
  const double q = std::floor(d * p.inv_tau[j]);
  double m = std::fma(-q, tau, d);
  if (!(m >= 0.0 && m < tau)) m = torch_remainder(d, tau);
  const double phi = m * p.inv_tau[j];
  const double up = phi * p.two_r[j];
  if (phi < 0.5 * p.r[j]) return {up, 1};
  if (phi < p.r[j]) return {2.0 - up, 2};
  return {leak * phi, 3};
}

template <typename scalar_t>
inline Vectorized<scalar_t> vsigmoid(const Vectorized<scalar_t>& x) {
  const Vectorized<scalar_t> one(scalar_t(1));
  return one / (one + x.neg().exp());
}

template <typename scalar_t>
inline Vectorized<scalar_t> vtanh(const Vectorized<scalar_t>& x) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    // tanh x = 1 - 2 / (1 + e^{2x}): one exp, ~20% faster than Sleef's tanh per step; its
    // absolute error (~1e-7) is float32 rounding of values in [-1, 1]. float64 stays exact.
    const Vectorized<scalar_t> one(scalar_t(1)), two(scalar_t(2));
    return one - two / (one + (x + x).exp());
  } else {
    return x.tanh();
  }
}

// Gates k [H] and branch codes (code == nullptr: k only) of one sample at one step. Same values
// as time_gate(), lane by lane: the AVX2 path does the same IEEE operations (multiply, floor,
// fused multiply-add).
template <typename scalar_t>
inline void gate_row(double t, bool valid, const GateParams& p, double leak, int64_t H,
                     scalar_t* k, int8_t* code) {
  if (!valid) {  // padded step: k = 0 keeps the state, and no gradient reaches tau, s, r_on
    std::fill(k, k + H, scalar_t(0));
    if (code) std::fill(code, code + H, int8_t(0));
    return;
  }
#if defined(CPU_CAPABILITY_AVX2)
  using VD = Vectorized<double>;
  constexpr int64_t W = VD::size();
  double kb[W], mb[W];
  int32_t cb[W];
  for (int64_t j = 0; j < H; j += W) {
    const int64_t n = std::min<int64_t>(W, H - j);
    const VD tv = VD::loadu(p.tau.data() + j, n), iv = VD::loadu(p.inv_tau.data() + j, n);
    const VD rv = VD::loadu(p.r.data() + j, n);
    const VD d = VD(t) - VD::loadu(p.shift.data() + j, n);
    const VD q = (d * iv).floor();
    VD m = at::vec::fmadd(q.neg(), tv, d);
    const int bad = ((m >= VD(0.0)) & (m < tv)).zero_mask() & ((1 << n) - 1);
    if (bad) {  // rare: the quotient was off by one; redo those lanes with the exact fmod
      m.store(mb);
      for (int64_t l = 0; l < n; ++l)
        if (bad & (1 << l)) mb[l] = torch_remainder(t - p.shift[j + l], p.tau[j + l]);
      m = VD::loadu(mb);
    }
    const VD phi = m * iv;
    const VD up = phi * VD::loadu(p.two_r.data() + j, n);
    const VD rising = phi < VD(0.5) * rv, falling = phi < rv;
    const VD kv = VD::blendv(VD::blendv(VD(leak) * phi, VD(2.0) - up, falling), up, rising);
    bool stored = false;  // 4 doubles -> 4 floats in one instruction where they fit
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (n == W) {
        _mm_storeu_ps(k + j, _mm256_cvtpd_ps(kv));
        stored = true;
      }
    }
    if (!stored) {
      kv.store(kb);
      for (int64_t l = 0; l < n; ++l) k[j + l] = static_cast<scalar_t>(kb[l]);
    }
    if (code == nullptr) continue;
    const VD cv = VD::blendv(VD::blendv(VD(3.0), VD(2.0), falling), VD(1.0), rising);
    const __m128i c32 = _mm256_cvtpd_epi32(cv);
    if (n == W) {  // 4 int8 codes without a scalar loop
      const int32_t c8 = _mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(c32, c32), c32));
      std::memcpy(code + j, &c8, 4);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(cb), c32);
      for (int64_t l = 0; l < n; ++l) code[j + l] = static_cast<int8_t>(cb[l]);
    }
  }
#else
  for (int64_t j = 0; j < H; ++j) {
    const Gate g = time_gate(t, p, j, leak);
    k[j] = static_cast<scalar_t>(g.k);
    if (code) code[j] = g.code;
  }
#endif
}

inline const double* dptr(const Tensor& x) { return x.data_ptr<double>(); }

// ---------------------------------------------------------------------------------------------
// Training (and dense inference) over a sequence. The weights are packed once per call so that
// each block of L neurons (L = SIMD width) has its rows contiguous, and a micro-kernel keeps an
// R x C tile of outputs in registers over the whole reduction, [h_{n-1}, x_n] against
// [W_hh; W_ih]: the input projection is part of each step's product, so no [T, B, 4H] tensor
// of projected inputs is ever written or read, and the tile goes straight into the
// elementwise pass.
// Threads split the batch: the samples of a batch are independent through the whole
// recurrence (forward and BPTT), so each thread runs its rows over all steps with no
// synchronisation at all. (Splitting neurons instead needs a barrier per step and shares a
// cache line per row at the split: measured no faster than one thread.)

// tile [R][C][L] = init + A B + A2 B2. Row r of A is at a + r lda (K values); column block c
// of B at reduction index k is the L values at b + k ldb + c cstride. A2/B2 likewise, with K2
// values (K2 = 0: no second product). init: C blocks of L (bias) at init + c cstride, or null.
template <typename scalar_t, int R, int C>
inline void micro_gemm(const scalar_t* a, int64_t lda, int64_t K, const scalar_t* b,
                       const scalar_t* a2, int64_t lda2, int64_t K2, const scalar_t* b2,
                       int64_t ldb, int64_t cstride, const scalar_t* init, scalar_t* tile) {
  using V = Vectorized<scalar_t>;
  V acc[R][C];
  for (int c = 0; c < C; ++c) {
    const V v = init ? V::loadu(init + c * cstride) : V(scalar_t(0));
    for (int r = 0; r < R; ++r) acc[r][c] = v;
  }
  const scalar_t* const as[2] = {a, a2};
  const scalar_t* const bs[2] = {b, b2};
  const int64_t ldas[2] = {lda, lda2}, Ks[2] = {K, K2};
  for (int s = 0; s < 2; ++s) {
    for (int64_t k = 0; k < Ks[s]; ++k) {
      const scalar_t* bk = bs[s] + k * ldb;
      V bv[C];
      for (int c = 0; c < C; ++c) bv[c] = V::loadu(bk + c * cstride);
      for (int r = 0; r < R; ++r) {
        const V av(as[s][r * ldas[s] + k]);
        for (int c = 0; c < C; ++c) acc[r][c] = at::vec::fmadd(av, bv[c], acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c].store(tile + (r * C + c) * V::size());
}

// micro_gemm with rows <= R chosen at run time (the last block of a thread's rows).
template <typename scalar_t, int R, int C, typename... Args>
inline void gemm_rows(int64_t rows, Args... args) {
  if constexpr (R > 1) {
    if (rows < R) return gemm_rows<scalar_t, R - 1, C>(rows, args...);
  }
  micro_gemm<scalar_t, R, C>(args...);
}

// Rows per micro-kernel call: R x C accumulators plus C weight vectors and a broadcast must fit
// the 16 vector registers of AVX2 (forward C = 4 gates, backward C = 1).
constexpr int kRowsFwd = 3;
constexpr int kRowsBwd = 8;

template <typename scalar_t>
constexpr int64_t lanes() { return Vectorized<scalar_t>::size(); }

inline int64_t num_blocks(int64_t n, int64_t L) { return (n + L - 1) / L; }

// Forward packing of W [4H, K] (W_hh or W_ih): p[jb][k][g][l] = W[g H + jb L + l][k], zero
// past H. With w a bias [4H] (K = 1): p[jb][g][l].
template <typename scalar_t>
Tensor pack_forward(const Tensor& w, int64_t H) {
  const int64_t L = lanes<scalar_t>(), nb = num_blocks(H, L), K = w.numel() / (4 * H);
  Tensor out = at::zeros({nb * K * 4 * L}, w.options());
  const scalar_t* src = w.data_ptr<scalar_t>();
  scalar_t* p = out.data_ptr<scalar_t>();
  for (int64_t j = 0; j < H; ++j)
    for (int64_t g = 0; g < 4; ++g)
      for (int64_t k = 0; k < K; ++k)
        p[(((j / L) * K + k) * 4 + g) * L + j % L] = src[(g * H + j) * K + k];
  return out;
}

// Backward packing of W [4H, N] (W_hh: N = H, W_ih: N = F): p[nb][q][l] = W[q][nb L + l] for
// q < 4H, zero past N.
template <typename scalar_t>
Tensor pack_backward(const Tensor& w) {
  const int64_t G = w.size(0), N = w.size(1), L = lanes<scalar_t>(), nb = num_blocks(N, L);
  Tensor out = at::zeros({nb * G * L}, w.options());
  const scalar_t* src = w.data_ptr<scalar_t>();
  scalar_t* p = out.data_ptr<scalar_t>();
  for (int64_t q = 0; q < G; ++q)
    for (int64_t j = 0; j < N; ++j) p[((j / L) * G + q) * L + j % L] = src[q * N + j];
  return out;
}

// Threads for one layer: torch's thread count, at most one per 4 samples, and one when a step
// is too small to be worth a thread (B = 1 streams, tiny test sizes) or when already inside a
// parallel region.
inline int64_t team_size(int64_t B, int64_t macs_per_step) {
  if (at::in_parallel_region() || macs_per_step < (int64_t(1) << 16)) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B / 4));
}

// Runs body(p, rows_begin, rows_end) for p < P on P threads (body(0, 0, B) when P = 1).
template <typename F>
void run_rows(int64_t P, int64_t B, const F& body) {
  if (P <= 1) {
    body(int64_t(0), int64_t(0), B);
    return;
  }
  at::parallel_for(0, P, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) body(p, p * B / P, (p + 1) * B / P);
  });
}

// Forward elementwise pass of one sample on n <= L neurons, eq. 7-10 with a lerp by k.
// pre: pre-activations with the biases, gate g at pre + g ps (whole vectors: lanes past n are
// computed and dropped). act (gate g at act + g H) receives the activations when saving for
// the backward (nullptr at inference). h, c may be hp, cp (all loads come first).
template <typename scalar_t>
inline void cell_vec_fwd(const scalar_t* pre, int64_t ps, const scalar_t* k, const scalar_t* hp,
                         const scalar_t* cp, scalar_t* h, scalar_t* c, scalar_t* act, int64_t H,
                         int64_t n) {
  using V = Vectorized<scalar_t>;
  const V kv = V::loadu(k, n);
  const V i = vsigmoid(V::loadu(pre));
  const V f = vsigmoid(V::loadu(pre + ps));
  const V g = vtanh(V::loadu(pre + 2 * ps));
  const V o = vsigmoid(V::loadu(pre + 3 * ps));
  const V cpv = V::loadu(cp, n), hpv = V::loadu(hp, n);
  const V ct = f * cpv + i * g;
  (hpv + kv * (o * vtanh(ct) - hpv)).store(h, n);
  (cpv + kv * (ct - cpv)).store(c, n);
  if (act != nullptr) {
    i.store(act, n);
    f.store(act + H, n);
    g.store(act + 2 * H, n);
    o.store(act + 3 * H, n);
  }
}

// True when k is 0 on all n lanes of `rows` rows (stride H): at inference those neurons keep
// their state exactly, so their GEMM and activations are skipped.
template <typename scalar_t>
inline bool all_closed(const scalar_t* k, int64_t rows, int64_t H, int64_t n) {
  using V = Vectorized<scalar_t>;
  const int full = (1 << n) - 1;
  for (int64_t r = 0; r < rows; ++r)
    if ((V::loadu(k + r * H, n).zero_mask() & full) != full) return false;
  return true;
}

template <typename scalar_t>
std::vector<Tensor> fused_forward_impl(const Tensor& x, const Tensor& t, const Tensor& mask,
                                       const Tensor& w_ih, const Tensor& bias,
                                       const Tensor& w_hh, const Tensor& tau, const Tensor& shift,
                                       const Tensor& r, const Tensor& h0, const Tensor& c0,
                                       double leak, bool save) {
  const int64_t T = x.size(0), B = x.size(1), F = x.size(2), H = w_hh.size(1), G = 4 * H;
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t nb = num_blocks(H, L), S = B * H;
  const auto opt = x.options();
  Tensor out = at::empty({T, B, H}, opt);
  // Saved for the backward. At inference: c in two rolling buffers, k of one step only.
  Tensor acts = save ? at::empty({T, B, G}, opt) : Tensor();
  Tensor call = at::empty({save ? T : 2, B, H}, opt);
  Tensor kall = at::empty({save ? T : 1, B, H}, opt);
  Tensor code = save ? at::empty({T, B, H}, opt.dtype(at::kChar)) : Tensor();
  const double* tp = dptr(t);
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;
  scalar_t *outp = out.data_ptr<scalar_t>(), *cp_all = call.data_ptr<scalar_t>();
  scalar_t* kp_all = kall.data_ptr<scalar_t>();
  int8_t* code_all = save ? code.data_ptr<int8_t>() : nullptr;
  scalar_t* acc_all = save ? acts.data_ptr<scalar_t>() : nullptr;
  const scalar_t* xp = x.data_ptr<scalar_t>();
  const scalar_t *h0p = h0.data_ptr<scalar_t>(), *c0p = c0.data_ptr<scalar_t>();
  const GateParams gp(tau, shift, r);
  const Tensor whp = pack_forward<scalar_t>(w_hh, H), wip = pack_forward<scalar_t>(w_ih, H);
  const Tensor bp = bias.numel() ? pack_forward<scalar_t>(bias, H) : Tensor();
  const scalar_t *wh = whp.data_ptr<scalar_t>(), *wi = wip.data_ptr<scalar_t>();
  const scalar_t* bb = bias.numel() ? bp.data_ptr<scalar_t>() : nullptr;
  run_rows(team_size(B, B * G * (H + F)), B, [&](int64_t, int64_t r0, int64_t r1) {
    alignas(64) scalar_t tile[kRowsFwd * 4 * L];
    for (int64_t n = 0; n < T; ++n) {
      const scalar_t* hp = n ? outp + (n - 1) * S : h0p;
      const scalar_t* cp = n ? cp_all + (save ? n - 1 : (n - 1) % 2) * S : c0p;
      const scalar_t* xn = xp + n * B * F;
      scalar_t* hn = outp + n * S;
      scalar_t* cn = cp_all + (save ? n : n % 2) * S;
      scalar_t* kn = kp_all + (save ? n : 0) * S;
      for (int64_t b = r0; b < r1; ++b)  // codes only for the backward
        gate_row<scalar_t>(tp[n * B + b], mp == nullptr || mp[n * B + b], gp, leak, H,
                           kn + b * H, save ? code_all + n * S + b * H : nullptr);
      for (int64_t jb = 0; jb < nb; ++jb) {
        const int64_t j0 = jb * L, nl = std::min<int64_t>(L, H - j0);
        for (int64_t b0 = r0; b0 < r1; b0 += kRowsFwd) {
          const int64_t rows = std::min<int64_t>(kRowsFwd, r1 - b0);
          if (!save && all_closed(kn + b0 * H + j0, rows, H, nl)) {
            for (int64_t b = b0; b < b0 + rows; ++b) {
              std::copy(hp + b * H + j0, hp + b * H + j0 + nl, hn + b * H + j0);
              std::copy(cp + b * H + j0, cp + b * H + j0 + nl, cn + b * H + j0);
            }
            continue;
          }
          gemm_rows<scalar_t, kRowsFwd, 4>(rows, hp + b0 * H, H, H, wh + jb * H * 4 * L,
                                           xn + b0 * F, F, F, wi + jb * F * 4 * L, 4 * L, L,
                                           bb ? bb + jb * 4 * L : nullptr, tile);
          for (int64_t q = 0; q < rows; ++q) {
            const int64_t b = b0 + q, o = b * H + j0;
            cell_vec_fwd<scalar_t>(tile + q * 4 * L, L, kn + o, hp + o, cp + o, hn + o, cn + o,
                                   save ? acc_all + (n * B + b) * G + j0 : nullptr, H, nl);
          }
        }
      }
    }
  });
  Tensor cn = call[save ? T - 1 : (T - 1) % 2].clone();
  if (!save) return {out, cn};
  return {out, cn, call, acts, kall, code};
}

// Backward elementwise pass of one sample on n <= L neurons (gate g of a and da at + g H).
// In: dh (carry + output grad), dc (carry). Out: pre-activation grads da, dk, and the carries
// (1-k) dh (the GEMM adds da W_hh to it), (1-k) dc + dc~ f. c~ = f c + i g and tanh c~ are
// recomputed with the forward's operations, so they are bit for bit the forward's values.
template <typename scalar_t>
inline void cell_vec_bwd(const scalar_t* a, int64_t H, const scalar_t* k, const scalar_t* hp,
                         const scalar_t* cp, const scalar_t* gout, scalar_t* dh, scalar_t* dc,
                         scalar_t* da, scalar_t* dk, int64_t n) {
  using V = Vectorized<scalar_t>;
  const V one(scalar_t(1));
  const V i = V::loadu(a, n), f = V::loadu(a + H, n);
  const V g = V::loadu(a + 2 * H, n), o = V::loadu(a + 3 * H, n);
  const V kv = V::loadu(k, n), hpv = V::loadu(hp, n), cpv = V::loadu(cp, n);
  const V ctv = f * cpv + i * g;
  const V tcv = vtanh(ctv);
  const V dhv = V::loadu(dh, n) + V::loadu(gout, n);
  const V dcv = V::loadu(dc, n);
  const V dht = kv * dhv;                                // h = h_p + k (h~ - h_p)
  const V dct = kv * dcv + dht * o * (one - tcv * tcv);  // c = c_p + k (c~ - c_p)
  (dhv * (o * tcv - hpv) + dcv * (ctv - cpv)).store(dk, n);
  (dct * g * i * (one - i)).store(da, n);
  (dct * cpv * f * (one - f)).store(da + H, n);
  (dct * i * (one - g * g)).store(da + 2 * H, n);
  (dht * tcv * o * (one - o)).store(da + 3 * H, n);
  (dhv * (one - kv)).store(dh, n);
  (dcv * (one - kv) + dct * f).store(dc, n);
}

// Time-gate gradients of one sample at one step for neurons j0 .. j0 + n, summed per neuron in
// float64: d k / d phi = 2/r, -2/r or alpha by branch; phi = ((t - s) mod tau) / tau has
// d phi / d tau = -(t - s) / tau^2 and d phi / d s = -1 / tau (floor: derivative 0). This sums
// dphi (t - s) and dphi; the caller scales by -1/tau^2 and -1/tau once at the end.
template <typename scalar_t>
inline void gate_grad_row(double t, const int8_t* code, const scalar_t* dk, const scalar_t* k,
                          const GateParams& p, int64_t j0, double leak, bool need_r, int64_t n,
                          double* acc_tau, double* acc_shift, double* acc_r) {
  const double *two_r = p.two_r.data() + j0, *shift = p.shift.data() + j0, *rr = p.r.data() + j0;
  int64_t j = 0;
#if defined(CPU_CAPABILITY_AVX2)
  if (!need_r) {  // 4 neurons at a time, the same operations as the scalar loop below
    using VD = Vectorized<double>;
    for (; j + 4 <= n; j += 4) {
      VD g;
      if constexpr (std::is_same_v<scalar_t, float>) g = VD(_mm256_cvtps_pd(_mm_loadu_ps(dk + j)));
      else g = VD::loadu(dk + j);
      int32_t c4;
      std::memcpy(&c4, code + j, 4);
      const VD c(_mm256_cvtepi32_pd(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(c4))));
      const VD tr = VD::loadu(two_r + j);
      VD slope = VD::blendv(VD(0.0), VD(leak), c == VD(3.0));
      slope = VD::blendv(slope, VD(0.0) - tr, c == VD(2.0));
      slope = VD::blendv(slope, tr, c == VD(1.0));
      const VD dphi = g * slope;
      (VD::loadu(acc_tau + j) + dphi * (VD(t) - VD::loadu(shift + j))).store(acc_tau + j);
      (VD::loadu(acc_shift + j) + dphi).store(acc_shift + j);
    }
  }
#endif
  for (; j < n; ++j) {
    const int8_t c = code[j];
    if (c == 0) continue;  // padded step
    const double g = static_cast<double>(dk[j]);
    const double slope = c == 1 ? two_r[j] : (c == 2 ? -two_r[j] : leak);
    const double dphi = g * slope;
    acc_tau[j] += dphi * (t - shift[j]);
    acc_shift[j] += dphi;
    if (need_r && c != 3) {  // k = 2 phi / r or 2 - 2 phi / r: dk/dr = -k/r, (2 - k)/r
      const double kk = static_cast<double>(k[j]);
      acc_r[j] += g * (c == 1 ? -kk : 2.0 - kk) / rr[j];
    }
  }
}

// C [rows, N] (row stride ldc) += A [rows, K] (row stride lda) B, with B packed by
// pack_backward (blocks of L columns, K x L each).
template <typename scalar_t>
inline void gemm_acc_rows(int64_t rows, const scalar_t* a, int64_t lda, int64_t K,
                          const scalar_t* bpack, int64_t N, scalar_t* c, int64_t ldc) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  alignas(64) scalar_t tile[kRowsBwd * L];
  for (int64_t jb = 0; jb < num_blocks(N, L); ++jb) {
    const int64_t j0 = jb * L, nl = std::min<int64_t>(L, N - j0);
    for (int64_t r0 = 0; r0 < rows; r0 += kRowsBwd) {
      const int64_t nr = std::min<int64_t>(kRowsBwd, rows - r0);
      gemm_rows<scalar_t, kRowsBwd, 1>(nr, a + r0 * lda, lda, K, bpack + jb * K * L,
                                       static_cast<const scalar_t*>(nullptr), int64_t(0),
                                       int64_t(0), static_cast<const scalar_t*>(nullptr), L,
                                       int64_t(0), static_cast<const scalar_t*>(nullptr), tile);
      for (int64_t q = 0; q < nr; ++q) {
        scalar_t* d = c + (r0 + q) * ldc + j0;
        (V::loadu(d, nl) + V::loadu(tile + q * L, nl)).store(d, nl);
      }
    }
  }
}

// C [R rows][C blocks of L] += sum_k A[k][r] B[k][c L ..]: the tile of a weight gradient
// sum_samples da^T v, with A = da rows (stride lda) and B = v rows (stride ldb, zero-padded to
// whole blocks). C rows have stride ldc.
template <typename scalar_t, int R, int C>
inline void micro_gemm_tn(int64_t K, const scalar_t* a, int64_t lda, const scalar_t* b,
                          int64_t ldb, scalar_t* c, int64_t ldc) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int cc = 0; cc < C; ++cc) acc[r][cc] = V::loadu(c + r * ldc + cc * L);
  for (int64_t k = 0; k < K; ++k) {
    V bv[C];
    for (int cc = 0; cc < C; ++cc) bv[cc] = V::loadu(b + k * ldb + cc * L);
    for (int r = 0; r < R; ++r) {
      const V av(a[k * lda + r]);
      for (int cc = 0; cc < C; ++cc) acc[r][cc] = at::vec::fmadd(av, bv[cc], acc[r][cc]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int cc = 0; cc < C; ++cc) acc[r][cc].store(c + r * ldc + cc * L);
}

template <typename scalar_t, int R, int C>
inline void gemm_tn_rows(int64_t rows, int64_t K, const scalar_t* a, int64_t lda,
                         const scalar_t* b, int64_t ldb, scalar_t* c, int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return gemm_tn_rows<scalar_t, R - 1, C>(rows, K, a, lda, b, ldb, c, ldc);
  }
  micro_gemm_tn<scalar_t, R, C>(K, a, lda, b, ldb, c, ldc);
}

// dW [M, Np] += A^T Bm over K samples: A [K, M] (stride lda), Bm [K, Np] (stride Np, Np a
// multiple of L), dW rows of stride Np.
template <typename scalar_t>
inline void gemm_tn_acc(int64_t K, int64_t M, int64_t Np, const scalar_t* a, int64_t lda,
                        const scalar_t* b, scalar_t* c) {
  constexpr int64_t L = lanes<scalar_t>();
  constexpr int kR = 6;  // 6 x 2 accumulators + 2 loads + a broadcast: 15 of 16 registers
  for (int64_t j0 = 0; j0 < Np; j0 += 2 * L) {
    const bool two = j0 + 2 * L <= Np;
    for (int64_t q0 = 0; q0 < M; q0 += kR) {
      const int64_t rows = std::min<int64_t>(kR, M - q0);
      scalar_t* ct = c + q0 * Np + j0;
      if (two) gemm_tn_rows<scalar_t, kR, 2>(rows, K, a + q0, lda, b + j0, Np, ct, Np);
      else gemm_tn_rows<scalar_t, kR, 1>(rows, K, a + q0, lda, b + j0, Np, ct, Np);
    }
  }
}

// Rows [r0, r1) of v (row stride n) into dst [r1 - r0, np], zero-padded from n to np.
template <typename scalar_t>
inline void copy_padded(const scalar_t* v, int64_t n, int64_t np, int64_t r0, int64_t r1,
                        scalar_t* dst) {
  for (int64_t b = r0; b < r1; ++b) {
    scalar_t* d = dst + (b - r0) * np;
    std::copy(v + b * n, v + b * n + n, d);
    std::fill(d + n, d + np, scalar_t(0));
  }
}

template <typename scalar_t>
std::vector<Tensor> fused_backward_impl(const Tensor& gout, const Tensor& ghn, const Tensor& gcn,
                                        const Tensor& out, const Tensor& call, const Tensor& acts,
                                        const Tensor& kall, const Tensor& code, const Tensor& x,
                                        const Tensor& t, const Tensor& w_ih, const Tensor& w_hh,
                                        const Tensor& tau, const Tensor& shift, const Tensor& r,
                                        const Tensor& h0, const Tensor& c0, double leak,
                                        bool need_r) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2), G = 4 * H, F = x.size(2);
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t nb = num_blocks(H, L), S = B * H;
  const int64_t Hp = nb * L, Fp = num_blocks(F, L) * L;
  using V = Vectorized<scalar_t>;
  Tensor dx = at::empty({T, B, F}, x.options());
  Tensor dh = ghn.clone(), dc = gcn.clone();
  const double* tp = dptr(t);
  const GateParams gpar(tau, shift, r);
  scalar_t *dhp = dh.data_ptr<scalar_t>(), *dcp = dc.data_ptr<scalar_t>();
  scalar_t* dxp = dx.data_ptr<scalar_t>();
  const scalar_t *outp = out.data_ptr<scalar_t>(), *cp_all = call.data_ptr<scalar_t>();
  const scalar_t *acp = acts.data_ptr<scalar_t>(), *k_all = kall.data_ptr<scalar_t>();
  const scalar_t *g_all = gout.data_ptr<scalar_t>(), *xp = x.data_ptr<scalar_t>();
  const scalar_t *h0p = h0.data_ptr<scalar_t>(), *c0p = c0.data_ptr<scalar_t>();
  const int8_t* code_all = code.data_ptr<int8_t>();
  const Tensor whp = pack_backward<scalar_t>(w_hh), wip = pack_backward<scalar_t>(w_ih);
  const scalar_t *wh = whp.data_ptr<scalar_t>(), *wi = wip.data_ptr<scalar_t>();
  const int64_t P = team_size(B, B * G * (H + F));
  // Per thread: float64 sums for d tau, d shift, d r_on (3H) and d bias (G); float sums (as a
  // GEMM would keep them) for d W_hh [G, Hp] and d W_ih [G, Fp]. Added up after the loop.
  const int64_t A = 3 * H + G;
  std::vector<double> acc(static_cast<size_t>(P * A), 0.0);
  std::vector<std::vector<scalar_t>> dw(P);
  run_rows(P, B, [&](int64_t p, int64_t r0, int64_t r1) {
    double *acc_tau = acc.data() + p * A, *acc_shift = acc_tau + H, *acc_r = acc_shift + H;
    double* acc_b = acc_r + H;
    const int64_t nr = r1 - r0;
    std::vector<scalar_t>& dwp = dw[p];
    dwp.assign(static_cast<size_t>(G * (Hp + Fp)), scalar_t(0));
    scalar_t *dwh = dwp.data(), *dwi = dwh + G * Hp;
    // This step's da of this thread's rows, and their h_{n-1} and x_n padded to whole blocks:
    // they stay in cache for the four products that use them.
    std::vector<scalar_t> da(static_cast<size_t>(nr * G)), hs(static_cast<size_t>(nr * Hp)),
        xs(static_cast<size_t>(nr * Fp)), db_step(static_cast<size_t>(G));
    for (int64_t n = T - 1; n >= 0; --n) {
      const scalar_t* hp = n ? outp + (n - 1) * S : h0p;
      const scalar_t* cp = n ? cp_all + (n - 1) * S : c0p;
      std::fill(db_step.begin(), db_step.end(), scalar_t(0));
      for (int64_t b = r0; b < r1; ++b) {
        scalar_t* dab = da.data() + (b - r0) * G;
        for (int64_t jb = 0; jb < nb; ++jb) {
          const int64_t j0 = jb * L, nl = std::min<int64_t>(L, H - j0);
          const int64_t o = b * H + j0, nt = n * S + o;
          alignas(64) scalar_t dk[L];
          cell_vec_bwd<scalar_t>(acp + (n * B + b) * G + j0, H, k_all + nt, hp + o, cp + o,
                                 g_all + nt, dhp + o, dcp + o, dab + j0, dk, nl);
          gate_grad_row<scalar_t>(tp[n * B + b], code_all + nt, dk, k_all + nt, gpar, j0, leak,
                                  need_r, nl, acc_tau + j0, acc_shift + j0, acc_r + j0);
        }
        for (int64_t q = 0; q < G; q += L) {  // this step's bias gradient, summed in float
          const int64_t m = std::min<int64_t>(L, G - q);
          (V::loadu(db_step.data() + q, m) + V::loadu(dab + q, m)).store(db_step.data() + q, m);
        }
      }
      for (int64_t q = 0; q < G; ++q) acc_b[q] += db_step[q];  // ... and over steps in float64
      // d W_hh += da_n^T h_{n-1}, d W_ih += da_n^T x_n; d h_{n-1} += da_n W_hh, d x_n = da_n W_ih.
      copy_padded(hp, H, Hp, r0, r1, hs.data());
      copy_padded(xp + n * B * F, F, Fp, r0, r1, xs.data());
      gemm_tn_acc<scalar_t>(nr, G, Hp, da.data(), G, hs.data(), dwh);
      gemm_tn_acc<scalar_t>(nr, G, Fp, da.data(), G, xs.data(), dwi);
      gemm_acc_rows<scalar_t>(nr, da.data(), G, G, wh, H, dhp + r0 * H, H);
      scalar_t* dxn = dxp + (n * B + r0) * F;
      std::fill(dxn, dxn + nr * F, scalar_t(0));
      gemm_acc_rows<scalar_t>(nr, da.data(), G, G, wi, F, dxn, F);
    }
  });
  for (int64_t p = 1; p < P; ++p) {
    for (int64_t j = 0; j < A; ++j) acc[j] += acc[p * A + j];
    for (size_t j = 0; j < dw[0].size(); ++j) dw[0][j] += dw[p][j];
  }
  const double *acc_tau = acc.data(), *acc_shift = acc_tau + H, *acc_r = acc_shift + H;
  const double* acc_b = acc_r + H;
  Tensor dw_hh = at::empty({G, H}, out.options()), dw_ih = at::empty({G, F}, out.options());
  for (int64_t q = 0; q < G; ++q) {
    std::copy(dw[0].data() + q * Hp, dw[0].data() + q * Hp + H, dw_hh.data_ptr<scalar_t>() + q * H);
    std::copy(dw[0].data() + G * Hp + q * Fp, dw[0].data() + G * Hp + q * Fp + F,
              dw_ih.data_ptr<scalar_t>() + q * F);
  }
  Tensor db = at::empty({G}, out.options());
  scalar_t* dbp = db.data_ptr<scalar_t>();
  for (int64_t q = 0; q < G; ++q) dbp[q] = static_cast<scalar_t>(acc_b[q]);
  auto dopt = tau.options();
  Tensor dtau = at::empty({H}, dopt), dshift = at::empty({H}, dopt), dr = at::empty({H}, dopt);
  const double* taup = dptr(tau);
  for (int64_t j = 0; j < H; ++j) {
    dtau.data_ptr<double>()[j] = -acc_tau[j] / (taup[j] * taup[j]);
    dshift.data_ptr<double>()[j] = -acc_shift[j] / taup[j];
    dr.data_ptr<double>()[j] = acc_r[j];
  }
  return {dx, dw_ih, db, dw_hh, dtau, dshift, dr, dh, dc};
}

// Sums of the four accumulators of dot4, added to out[0..3].
template <typename scalar_t>
inline void hsum4(const Vectorized<scalar_t>& a0, const Vectorized<scalar_t>& a1,
                  const Vectorized<scalar_t>& a2, const Vectorized<scalar_t>& a3, scalar_t* out) {
#if defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, float>) {
    const __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
    const __m256 t2 = _mm256_hadd_ps(t0, t1);  // per 128-bit half: the 4 partial sums
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps(t2, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), s));
    return;
  }
#endif
  constexpr int64_t L = Vectorized<scalar_t>::size();
  alignas(64) scalar_t l[4][L];
  a0.store(l[0]);
  a1.store(l[1]);
  a2.store(l[2]);
  a3.store(l[3]);
  for (int g = 0; g < 4; ++g)
    for (int64_t k = 0; k < L; ++k) out[g] += l[g][k];
}

// out[g] += sum_k w[g stride + k] v[k] for the 4 gate rows of one neuron: v is loaded once for
// the four. n need not be a multiple of the vector width (scalar tail).
template <typename scalar_t>
inline void dot4(const scalar_t* w, int64_t stride, const scalar_t* v, int64_t n, scalar_t* out) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  V a0(scalar_t(0)), a1(scalar_t(0)), a2(scalar_t(0)), a3(scalar_t(0));
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const V vv = V::loadu(v + k);
    a0 = at::vec::fmadd(vv, V::loadu(w + k), a0);
    a1 = at::vec::fmadd(vv, V::loadu(w + stride + k), a1);
    a2 = at::vec::fmadd(vv, V::loadu(w + 2 * stride + k), a2);
    a3 = at::vec::fmadd(vv, V::loadu(w + 3 * stride + k), a3);
  }
  hsum4(a0, a1, a2, a3, out);
  for (; k < n; ++k)
    for (int g = 0; g < 4; ++g) out[g] += w[g * stride + k] * v[k];
}

// dot4 for two neurons at once over packed rows (K a multiple of the vector width): eight
// independent accumulator chains instead of four, so the FMA latency is hidden.
template <typename scalar_t>
inline void dot4x2(const scalar_t* w0, const scalar_t* w1, int64_t K, const scalar_t* v,
                   scalar_t* out0, scalar_t* out1) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  V a[8];
  for (int i = 0; i < 8; ++i) a[i] = V(scalar_t(0));
  for (int64_t k = 0; k < K; k += L) {
    const V vv = V::loadu(v + k);
    for (int g = 0; g < 4; ++g) {
      a[g] = at::vec::fmadd(vv, V::loadu(w0 + g * K + k), a[g]);
      a[4 + g] = at::vec::fmadd(vv, V::loadu(w1 + g * K + k), a[4 + g]);
    }
  }
  hsum4(a[0], a[1], a[2], a[3], out0);
  hsum4(a[4], a[5], a[6], a[7], out1);
}

// Left-pack table: kPack.idx[bits] lists the set lanes of an 8-bit mask first (then zeros).
struct PackLut {
  alignas(32) int32_t idx[256][8];
};
constexpr PackLut make_pack_lut() {
  PackLut t{};
  for (int bits = 0; bits < 256; ++bits) {
    int n = 0;
    for (int l = 0; l < 8; ++l)
      if (bits >> l & 1) t.idx[bits][n++] = l;
  }
  return t;
}
constexpr PackLut kPack = make_pack_lut();

// The open neurons (k != 0) of k[0, H): their indices to open[], their k to kopen[]; returns
// how many. k must be readable and 0 from H up to a whole number of 8 lanes; open and kopen
// need room for that many plus 8 (whole vectors are stored).
template <typename scalar_t>
inline int64_t open_lanes(const scalar_t* k, int64_t H, int32_t* open, scalar_t* kopen) {
  int64_t m = 0;
#if defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<scalar_t, float>) {
    // Branch-free left-pack, 8 neurons at a time: which neurons are open changes at random
    // from step to step, and a loop over each block's open lanes mispredicts about once a block.
    for (int64_t j0 = 0; j0 < H; j0 += 8) {
      const __m256 kv = _mm256_loadu_ps(k + j0);
      const int bits = _mm256_movemask_ps(_mm256_cmp_ps(kv, _mm256_setzero_ps(), _CMP_NEQ_UQ));
      const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPack.idx[bits]));
      _mm256_storeu_ps(kopen + m, _mm256_permutevar8x32_ps(kv, perm));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(open + m),
                          _mm256_add_epi32(perm, _mm256_set1_epi32(static_cast<int32_t>(j0))));
      m += __builtin_popcount(bits);
    }
    return m;
  }
#endif
  for (int64_t j = 0; j < H; ++j)
    if (k[j] != scalar_t(0)) {
      open[m] = static_cast<int32_t>(j);
      kopen[m++] = k[j];
    }
  return m;
}

template <typename scalar_t>
std::vector<Tensor> sparse_forward_impl(const Tensor& x, const Tensor& t, const Tensor& mask,
                                        const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                        const Tensor& tau, const Tensor& shift, const Tensor& r,
                                        const Tensor& h0, const Tensor& c0) {
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t T = x.size(0), B = x.size(1), F = x.size(2), H = w_hh.size(1);
  Tensor out = at::empty({T, B, H}, x.options());
  Tensor c = c0.clone();
  Tensor counts = at::zeros({H}, x.options().dtype(at::kDouble));
  const scalar_t *xp = x.data_ptr<scalar_t>(), *wi = w_ih.data_ptr<scalar_t>();
  const scalar_t* wh = w_hh.data_ptr<scalar_t>();
  const scalar_t* bp = bias.numel() ? bias.data_ptr<scalar_t>() : nullptr;
  const double* tp = dptr(t);
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;
  scalar_t *cp = c.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>();
  double* cnt = counts.data_ptr<double>();
  const GateParams gp(tau, shift, r);
  // Each sample's state as one vector v = [h | x_n | 1 | 0], padded to K, a whole number of
  // vectors. For a long enough call each neuron's 4 gate rows of [W_hh | W_ih | b] are packed
  // to match, so one dot product without a tail gives a pre-activation, bias included; for a
  // few steps (PhasedLSTM.step) packing would cost more than it saves, and the rows are used
  // in place.
  const bool packed = T * B >= 64;
  const int64_t K = num_blocks(H + F + (bp ? 1 : 0), L) * L;
  std::vector<scalar_t> wpack(packed ? static_cast<size_t>(H * 4 * K) : 0, scalar_t(0));
  for (int64_t j = 0; packed && j < H; ++j)
    for (int64_t g = 0; g < 4; ++g) {
      scalar_t* d = wpack.data() + (j * 4 + g) * K;
      std::copy(wh + (g * H + j) * H, wh + (g * H + j + 1) * H, d);
      std::copy(wi + (g * H + j) * F, wi + (g * H + j + 1) * F, d + H);
      if (bp) d[H + F] = bp[g * H + j];
    }
  std::vector<scalar_t> v(static_cast<size_t>(B * K), scalar_t(0));
  for (int64_t b = 0; b < B; ++b) {
    std::copy(h0.data_ptr<scalar_t>() + b * H, h0.data_ptr<scalar_t>() + (b + 1) * H,
              v.data() + b * K);
    if (bp) v[b * K + H + F] = scalar_t(1);
  }
  // Threads: samples are independent, so a batch is split over threads as in the dense path.
  // (For a single stream, computing all its gates first on both cores measured slower than
  // computing them in the loop: 3.0 vs 2.6 ms on the 3000-event stream.)
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t P = T * B >= 256 ? std::min<int64_t>(threads, B) : 1;
  std::vector<int64_t> cnt_all(static_cast<size_t>(P * H), 0);
  run_rows(P, B, [&](int64_t p, int64_t r0, int64_t r1) {
    int64_t* cntp = cnt_all.data() + p * H;
    // Scratch, padded to whole blocks of 8 plus one (open_lanes' stores): k of all neurons
    // (0 past H); for the m open ones their index, k, 4 pre-activations, old h and c.
    const int64_t Hp = num_blocks(H, 8) * 8 + 8;
    std::vector<scalar_t> kbuf(Hp, scalar_t(0)), kopen(Hp), pre(4 * Hp), hold(Hp), cold(Hp);
    std::vector<int32_t> open(Hp, 0);
    for (int64_t n = 0; n < T; ++n) {
      for (int64_t b = r0; b < r1; ++b) {
        scalar_t* vb = v.data() + b * K;  // h is vb[0, H)
        scalar_t* cb = cp + b * H;
        int64_t m = 0;  // leak 0: a closed neuron has k = 0 exactly and keeps its state
        if (mp == nullptr || mp[n * B + b]) {
          gate_row<scalar_t>(tp[n * B + b], true, gp, 0.0, H, kbuf.data(), nullptr);
          m = open_lanes(kbuf.data(), H, open.data(), kopen.data());
        }
        if (m > 0) {
          const scalar_t* xb = xp + (n * B + b) * F;
          std::copy(xb, xb + F, vb + H);
          // Pre-activations of the open neurons from the old h (all before any update), two
          // neurons per product where packed: 8 independent accumulator chains.
          for (int64_t q = 0; q < m; q += 2) {
            const int64_t d = std::min<int64_t>(2, m - q);
            scalar_t s[2][4] = {};
            if (packed && d == 2) {
              dot4x2(wpack.data() + open[q] * 4 * K, wpack.data() + open[q + 1] * 4 * K, K, vb,
                     s[0], s[1]);
            } else {
              for (int64_t e = 0; e < d; ++e) {
                const int64_t j = open[q + e];
                if (packed) {
                  dot4(wpack.data() + j * 4 * K, K, vb, K, s[e]);
                  continue;
                }
                for (int g = 0; g < 4; ++g) s[e][g] = bp ? bp[g * H + j] : scalar_t(0);
                dot4(wh + j * H, H * H, vb, H, s[e]);
                dot4(wi + j * F, H * F, xb, F, s[e]);
              }
            }
            for (int64_t e = 0; e < d; ++e) {
              for (int g = 0; g < 4; ++g) pre[g * Hp + q + e] = s[e][g];
              hold[q + e] = vb[open[q + e]];
              cold[q + e] = cb[open[q + e]];
            }
          }
          // Eq. 7-10 on the open neurons, a vector at a time, as the dense path does them.
          for (int64_t q = 0; q < m; q += L)
            cell_vec_fwd<scalar_t>(pre.data() + q, Hp, kopen.data() + q, hold.data() + q,
                                   cold.data() + q, hold.data() + q, cold.data() + q, nullptr,
                                   H, std::min<int64_t>(L, m - q));
          for (int64_t q = 0; q < m; ++q) {
            vb[open[q]] = hold[q];
            cb[open[q]] = cold[q];
            ++cntp[open[q]];
          }
        }
        std::copy(vb, vb + H, op + (n * B + b) * H);
      }
    }
  });
  for (int64_t j = 0; j < H; ++j) {  // updates per neuron, averaged over the samples
    int64_t total = 0;
    for (int64_t q = 0; q < P; ++q) total += cnt_all[q * H + j];
    cnt[j] = static_cast<double>(total) / static_cast<double>(B);
  }
  Tensor h = at::empty({B, H}, x.options());
  for (int64_t b = 0; b < B; ++b)
    std::copy(v.data() + b * K, v.data() + b * K + H, h.data_ptr<scalar_t>() + b * H);
  return {out, h, c, counts};
}

// Layer parameters as the kernels take them, with the ATen ops of PhasedLSTM.kernel_bias and
// time_params64: (b_ih + b_hh or None, tau clamped below at tau_min, shift, r_on clamped to
// [r_min, 1]), the last three in float64. One call instead of eight ops from Python. Not
// differentiable: for calls that need no gradient.
std::vector<Tensor> kernel_params(Tensor tau, Tensor shift, Tensor r_on, std::optional<Tensor> b_ih,
                                  std::optional<Tensor> b_hh, double tau_min, double r_min) {
  Tensor bias;  // undefined: None in Python
  if (b_ih.has_value() && b_ih->defined()) bias = (*b_ih + *b_hh).contiguous();
  return {bias, tau.clamp_min(tau_min).to(at::kDouble).contiguous(),
          shift.to(at::kDouble).contiguous(), r_on.clamp(r_min, 1.0).to(at::kDouble).contiguous()};
}

void check_cpu(const Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), name, " must be a contiguous CPU tensor");
}

std::vector<Tensor> fused_forward(Tensor x, Tensor t, Tensor mask, Tensor w_ih, Tensor bias,
                                  Tensor w_hh, Tensor tau, Tensor shift, Tensor r, Tensor h0,
                                  Tensor c0, double leak, bool save) {
  for (auto* p : {&x, &t, &w_ih, &bias, &w_hh, &tau, &shift, &r, &h0, &c0})
    check_cpu(*p, "fused_forward input");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "plstm_fused_forward", [&] {
    res = fused_forward_impl<scalar_t>(x, t, mask, w_ih, bias, w_hh, tau, shift, r, h0, c0, leak,
                                       save);
  });
  return res;
}

std::vector<Tensor> fused_backward(Tensor gout, Tensor ghn, Tensor gcn, Tensor out, Tensor call,
                                   Tensor acts, Tensor kall, Tensor code, Tensor x, Tensor t,
                                   Tensor w_ih, Tensor w_hh, Tensor tau, Tensor shift, Tensor r,
                                   Tensor h0, Tensor c0, double leak, bool need_r) {
  for (auto* p : {&gout, &ghn, &gcn}) check_cpu(*p, "fused_backward gradient");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "plstm_fused_backward", [&] {
    res = fused_backward_impl<scalar_t>(gout, ghn, gcn, out, call, acts, kall, code, x, t, w_ih,
                                        w_hh, tau, shift, r, h0, c0, leak, need_r);
  });
  return res;
}

std::vector<Tensor> sparse_forward(Tensor x, Tensor t, Tensor mask, Tensor w_ih, Tensor w_hh,
                                   Tensor bias, Tensor tau, Tensor shift, Tensor r, Tensor h0,
                                   Tensor c0) {
  for (auto* p : {&x, &t, &w_ih, &w_hh, &tau, &shift, &r, &h0, &c0})
    check_cpu(*p, "sparse_forward input");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "plstm_sparse_forward", [&] {
    res = sparse_forward_impl<scalar_t>(x, t, mask, w_ih, w_hh, bias, tau, shift, r, h0, c0);
  });
  return res;
}

}  // namespace

void register_bnlstm_ops(pybind11::module_& m);  // bnlstm_ops.cpp, built into this module

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fused_forward", &fused_forward, "Phased LSTM layer forward (fused time gate)");
  m.def("fused_backward", &fused_backward, "Phased LSTM layer BPTT");
  m.def("sparse_forward", &sparse_forward, "Phased LSTM layer, event-driven inference");
  m.def("kernel_params", &kernel_params, "Layer parameters as the kernels take them");
  register_bnlstm_ops(m);
}
