// CPU kernels of the Phased LSTM (Neil et al. 2016, eq. 6-10), built lazily by
// plstm_repro/cells/_ext.py with torch.utils.cpp_extension.
//
//   fused_forward / fused_backward: one layer over a sequence for training. The caller gives the
//     input projection of all steps at once (xw = x W_ih^T + b_ih + b_hh, [T, B, 4H]); each step
//     does one GEMM h W_hh^T plus one fused elementwise pass that also computes the time gate.
//     The backward is hand-written BPTT reusing what the forward saved, and accumulates
//     d tau, d shift, d r_on in float64.
//   sparse_forward: event-driven inference (leak 0): at each step only neurons whose gate is
//     open (k > 0) are computed, from their rows of W_ih and W_hh; closed ones keep their state.
//
// Never build with -ffast-math: an approximate division moves floor((t - s) / tau) near the wrap.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
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

// Gates k [H] and branch codes of one sample at one step. Same values as time_gate(), lane by
// lane: the AVX2 path does the same IEEE operations (multiply, floor, fused multiply-add).
template <typename scalar_t>
inline void gate_row(double t, bool valid, const GateParams& p, double leak, int64_t H,
                     scalar_t* k, int8_t* code) {
  if (!valid) {  // padded step: k = 0 keeps the state, and no gradient reaches tau, s, r_on
    std::fill(k, k + H, scalar_t(0));
    std::fill(code, code + H, int8_t(0));
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
    const VD cv = VD::blendv(VD::blendv(VD(3.0), VD(2.0), falling), VD(1.0), rising);
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (n == W) {  // 4 doubles -> 4 floats and 4 int8 codes without a scalar loop
        _mm_storeu_ps(k + j, _mm256_cvtpd_ps(kv));
        const __m128i c32 = _mm256_cvtpd_epi32(cv);
        const int32_t c8 = _mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(c32, c32), c32));
        std::memcpy(code + j, &c8, 4);
        continue;
      }
    }
    kv.store(kb);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(cb), _mm256_cvtpd_epi32(cv));
    for (int64_t l = 0; l < n; ++l) {
      k[j + l] = static_cast<scalar_t>(kb[l]);
      code[j + l] = static_cast<int8_t>(cb[l]);
    }
  }
#else
  for (int64_t j = 0; j < H; ++j) {
    const Gate g = time_gate(t, p, j, leak);
    k[j] = static_cast<scalar_t>(g.k);
    code[j] = g.code;
  }
#endif
}

inline const double* dptr(const Tensor& x) { return x.data_ptr<double>(); }

// ---------------------------------------------------------------------------------------------
// Training (and dense inference) over a sequence. W_hh is packed once per call so that each
// block of L neurons (L = SIMD width) has its weights contiguous, and a micro-kernel keeps an
// R x C tile of outputs in registers over the whole reduction: the per-step GEMM runs without
// any dispatch, and its outputs go straight into the elementwise pass.
// Threads split the batch: the samples of a batch are independent through the whole
// recurrence (forward and BPTT), so each thread runs its rows over all steps with no
// synchronisation at all. (Splitting neurons instead needs a barrier per step and shares a
// cache line per row at the split: measured no faster than one thread.)

// out tile [R][C][L] = A [R rows of K, row stride lda] x B, where column block c of B at
// reduction index k is the L values at b + k * ldb + c * cstride.
template <typename scalar_t, int R, int C>
inline void micro_gemm(const scalar_t* a, int64_t lda, int64_t K, const scalar_t* b,
                       int64_t ldb, int64_t cstride, scalar_t* tile) {
  using V = Vectorized<scalar_t>;
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = V(scalar_t(0));
  for (int64_t k = 0; k < K; ++k) {
    const scalar_t* bk = b + k * ldb;
    V bv[C];
    for (int c = 0; c < C; ++c) bv[c] = V::loadu(bk + c * cstride);
    for (int r = 0; r < R; ++r) {
      const V av(a[r * lda + k]);
      for (int c = 0; c < C; ++c) acc[r][c] = at::vec::fmadd(av, bv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c].store(tile + (r * C + c) * V::size());
}

// micro_gemm with rows <= R chosen at run time (the last block of the batch).
template <typename scalar_t, int R, int C>
inline void gemm_rows(int64_t rows, const scalar_t* a, int64_t lda, int64_t K, const scalar_t* b,
                      int64_t ldb, int64_t cstride, scalar_t* tile) {
  if constexpr (R > 1) {
    if (rows < R) return gemm_rows<scalar_t, R - 1, C>(rows, a, lda, K, b, ldb, cstride, tile);
  }
  micro_gemm<scalar_t, R, C>(a, lda, K, b, ldb, cstride, tile);
}

// Rows per micro-kernel call: R x C accumulators plus C weight vectors and a broadcast must fit
// the 16 vector registers of AVX2 (forward C = 4 gates, backward C = 1).
constexpr int kRowsFwd = 3;
constexpr int kRowsBwd = 8;

template <typename scalar_t>
constexpr int64_t lanes() { return Vectorized<scalar_t>::size(); }

inline int64_t num_blocks(int64_t H, int64_t L) { return (H + L - 1) / L; }

// Forward packing: wf[jb][k][g][l] = W_hh[g H + jb L + l][k], zero past H.
template <typename scalar_t>
Tensor pack_forward(const Tensor& w_hh, int64_t H) {
  const int64_t L = lanes<scalar_t>(), nb = num_blocks(H, L);
  Tensor wf = at::zeros({nb * H * 4 * L}, w_hh.options());
  const scalar_t* w = w_hh.data_ptr<scalar_t>();
  scalar_t* p = wf.data_ptr<scalar_t>();
  for (int64_t j = 0; j < H; ++j)
    for (int64_t g = 0; g < 4; ++g)
      for (int64_t k = 0; k < H; ++k)
        p[(((j / L) * H + k) * 4 + g) * L + j % L] = w[(g * H + j) * H + k];
  return wf;
}

// Backward packing: wb[jb][q][l] = W_hh[q][jb L + l] for q < 4H, zero past H.
template <typename scalar_t>
Tensor pack_backward(const Tensor& w_hh, int64_t H) {
  const int64_t L = lanes<scalar_t>(), nb = num_blocks(H, L), G = 4 * H;
  Tensor wb = at::zeros({nb * G * L}, w_hh.options());
  const scalar_t* w = w_hh.data_ptr<scalar_t>();
  scalar_t* p = wb.data_ptr<scalar_t>();
  for (int64_t q = 0; q < G; ++q)
    for (int64_t j = 0; j < H; ++j) p[((j / L) * G + q) * L + j % L] = w[q * H + j];
  return wb;
}

inline void prefetch(const void* p) {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
#endif
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
// pre: GEMM tile (gate g at pre + g L); xw, act: gate g at + g H. act receives the activations
// and tc_out tanh(c~) when saving for the backward (nullptr at inference; c~ = f c + i g is
// recomputed there, bit for bit).
template <typename scalar_t>
inline void cell_vec_fwd(const scalar_t* pre, const scalar_t* xw, int64_t H, const scalar_t* k,
                         const scalar_t* hp, const scalar_t* cp, scalar_t* h, scalar_t* c,
                         scalar_t* act, scalar_t* tc_out, int64_t n) {
  using V = Vectorized<scalar_t>;
  constexpr int64_t L = V::size();
  const V kv = V::loadu(k, n);
  const V i = vsigmoid(V::loadu(pre) + V::loadu(xw, n));
  const V f = vsigmoid(V::loadu(pre + L) + V::loadu(xw + H, n));
  const V g = vtanh(V::loadu(pre + 2 * L) + V::loadu(xw + 2 * H, n));
  const V o = vsigmoid(V::loadu(pre + 3 * L) + V::loadu(xw + 3 * H, n));
  const V cpv = V::loadu(cp, n), hpv = V::loadu(hp, n);
  const V ct = f * cpv + i * g;
  const V tc = vtanh(ct);
  (hpv + kv * (o * tc - hpv)).store(h, n);
  (cpv + kv * (ct - cpv)).store(c, n);
  if (act != nullptr) {
    i.store(act, n);
    f.store(act + H, n);
    g.store(act + 2 * H, n);
    o.store(act + 3 * H, n);
    tc.store(tc_out, n);
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
std::vector<Tensor> fused_forward_impl(const Tensor& xw, const Tensor& t, const Tensor& mask,
                                       const Tensor& w_hh, const Tensor& tau, const Tensor& shift,
                                       const Tensor& r, const Tensor& h0, const Tensor& c0,
                                       double leak, bool save) {
  const int64_t T = xw.size(0), B = xw.size(1), G = xw.size(2), H = G / 4;
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t nb = num_blocks(H, L), S = B * H;
  const auto opt = xw.options();
  Tensor out = at::empty({T, B, H}, opt);
  // Saved for the backward. At inference: c in two rolling buffers, k of one step only.
  Tensor acts = save ? at::empty({T, B, G}, opt) : Tensor();
  Tensor call = at::empty({save ? T : 2, B, H}, opt);
  Tensor tct = save ? at::empty({T, B, H}, opt) : Tensor();
  Tensor kall = at::empty({save ? T : 1, B, H}, opt);
  Tensor code = at::empty({save ? T : 1, B, H}, opt.dtype(at::kChar));
  const double* tp = dptr(t);
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;
  scalar_t *outp = out.data_ptr<scalar_t>(), *cp_all = call.data_ptr<scalar_t>();
  scalar_t* kp_all = kall.data_ptr<scalar_t>();
  int8_t* code_all = code.data_ptr<int8_t>();
  scalar_t* acc_all = save ? acts.data_ptr<scalar_t>() : nullptr;
  scalar_t* tc_all = save ? tct.data_ptr<scalar_t>() : nullptr;
  const scalar_t* xwp = xw.data_ptr<scalar_t>();
  const scalar_t *h0p = h0.data_ptr<scalar_t>(), *c0p = c0.data_ptr<scalar_t>();
  const GateParams gp(tau, shift, r);
  const Tensor wf = pack_forward<scalar_t>(w_hh, H);
  const scalar_t* wfp = wf.data_ptr<scalar_t>();
  run_rows(team_size(B, B * G * H), B, [&](int64_t, int64_t r0, int64_t r1) {
    alignas(64) scalar_t tile[kRowsFwd * 4 * L];
    for (int64_t n = 0; n < T; ++n) {
      const scalar_t* hp = n ? outp + (n - 1) * S : h0p;
      const scalar_t* cp = n ? cp_all + (save ? n - 1 : (n - 1) % 2) * S : c0p;
      scalar_t* hn = outp + n * S;
      scalar_t* cn = cp_all + (save ? n : n % 2) * S;
      scalar_t* kn = kp_all + (save ? n : 0) * S;
      for (int64_t b = r0; b < r1; ++b)
        gate_row<scalar_t>(tp[n * B + b], mp == nullptr || mp[n * B + b], gp, leak, H,
                           kn + b * H, code_all + (save ? n : 0) * S + b * H);
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
          if (n + 1 < T) {  // next step's xw rows: strided by 4H, no hardware prefetcher sees them
            for (int64_t b = b0; b < b0 + rows; ++b)
              for (int64_t g = 0; g < 4; ++g)
                prefetch(xwp + ((n + 1) * B + b) * G + g * H + j0);
          }
          gemm_rows<scalar_t, kRowsFwd, 4>(rows, hp + b0 * H, H, H, wfp + jb * H * 4 * L, 4 * L,
                                           L, tile);
          for (int64_t q = 0; q < rows; ++q) {
            const int64_t b = b0 + q, o = b * H + j0;
            cell_vec_fwd<scalar_t>(tile + q * 4 * L, xwp + (n * B + b) * G + j0, H, kn + o,
                                   hp + o, cp + o, hn + o, cn + o,
                                   save ? acc_all + (n * B + b) * G + j0 : nullptr,
                                   save ? tc_all + n * S + o : nullptr, nl);
          }
        }
      }
    }
  });
  Tensor cn = call[save ? T - 1 : (T - 1) % 2].clone();
  if (!save) return {out, cn};
  return {out, cn, call, acts, tct, kall, code};
}

// Backward elementwise pass of one sample on n <= L neurons (gate g of a and da at + g H).
// In: dh (carry + output grad), dc (carry). Out: pre-activation grads da, dk, and the carries
// (1-k) dh (the GEMM adds da W_hh to it), (1-k) dc + dc~ f.
template <typename scalar_t>
inline void cell_vec_bwd(const scalar_t* a, int64_t H, const scalar_t* tc, const scalar_t* k,
                         const scalar_t* hp, const scalar_t* cp, const scalar_t* gout,
                         scalar_t* dh, scalar_t* dc, scalar_t* da, scalar_t* dk, int64_t n) {
  using V = Vectorized<scalar_t>;
  const V one(scalar_t(1));
  const V i = V::loadu(a, n), f = V::loadu(a + H, n);
  const V g = V::loadu(a + 2 * H, n), o = V::loadu(a + 3 * H, n);
  const V tcv = V::loadu(tc, n), kv = V::loadu(k, n);
  const V hpv = V::loadu(hp, n), cpv = V::loadu(cp, n);
  const V ctv = f * cpv + i * g;  // c~, exactly as the forward computed it
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

template <typename scalar_t>
std::vector<Tensor> fused_backward_impl(const Tensor& gout, const Tensor& ghn, const Tensor& gcn,
                                        const Tensor& out, const Tensor& call, const Tensor& acts,
                                        const Tensor& tct, const Tensor& kall,
                                        const Tensor& code, const Tensor& t, const Tensor& w_hh,
                                        const Tensor& tau, const Tensor& shift, const Tensor& r,
                                        const Tensor& h0, const Tensor& c0, double leak,
                                        bool need_r) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2), G = 4 * H;
  constexpr int64_t L = lanes<scalar_t>();
  const int64_t nb = num_blocks(H, L), S = B * H;
  Tensor da = at::empty({T, B, G}, out.options());
  Tensor dh = ghn.clone(), dc = gcn.clone();
  const double* tp = dptr(t);
  const GateParams gpar(tau, shift, r);
  scalar_t *dhp = dh.data_ptr<scalar_t>(), *dcp = dc.data_ptr<scalar_t>();
  const scalar_t *outp = out.data_ptr<scalar_t>(), *cp_all = call.data_ptr<scalar_t>();
  const scalar_t* acp = acts.data_ptr<scalar_t>();
  const scalar_t *tc_all = tct.data_ptr<scalar_t>(), *k_all = kall.data_ptr<scalar_t>();
  const scalar_t* g_all = gout.data_ptr<scalar_t>();
  const scalar_t *h0p = h0.data_ptr<scalar_t>(), *c0p = c0.data_ptr<scalar_t>();
  const int8_t* code_all = code.data_ptr<int8_t>();
  scalar_t* da_all = da.data_ptr<scalar_t>();
  const Tensor wb = pack_backward<scalar_t>(w_hh, H);
  const scalar_t* wbp = wb.data_ptr<scalar_t>();
  const int64_t P = team_size(B, B * G * H);
  // d tau, d shift, d r_on sums per thread (float64), added up after the loop.
  std::vector<double> acc(static_cast<size_t>(P * 3 * H), 0.0);
  run_rows(P, B, [&](int64_t p, int64_t r0, int64_t r1) {
    alignas(64) scalar_t tile[kRowsBwd * L];
    double *acc_tau = acc.data() + p * 3 * H, *acc_shift = acc_tau + H, *acc_r = acc_shift + H;
    for (int64_t n = T - 1; n >= 0; --n) {
      const scalar_t* hp = n ? outp + (n - 1) * S : h0p;
      const scalar_t* cp = n ? cp_all + (n - 1) * S : c0p;
      scalar_t* dan = da_all + n * B * G;
      for (int64_t b = r0; b < r1; ++b) {
        for (int64_t jb = 0; jb < nb; ++jb) {
          const int64_t j0 = jb * L, nl = std::min<int64_t>(L, H - j0);
          const int64_t o = b * H + j0, nt = n * S + o;
          alignas(64) scalar_t dk[L];
          cell_vec_bwd<scalar_t>(acp + (n * B + b) * G + j0, H, tc_all + nt, k_all + nt,
                                 hp + o, cp + o, g_all + nt, dhp + o, dcp + o, dan + b * G + j0,
                                 dk, nl);
          gate_grad_row<scalar_t>(tp[n * B + b], code_all + nt, dk, k_all + nt, gpar, j0, leak,
                                  need_r, nl, acc_tau + j0, acc_shift + j0, acc_r + j0);
        }
      }
      // d h_{n-1} += da_n W_hh on this thread's rows.
      for (int64_t jb = 0; jb < nb; ++jb) {
        const int64_t j0 = jb * L, nl = std::min<int64_t>(L, H - j0);
        for (int64_t b0 = r0; b0 < r1; b0 += kRowsBwd) {
          const int64_t rows = std::min<int64_t>(kRowsBwd, r1 - b0);
          gemm_rows<scalar_t, kRowsBwd, 1>(rows, dan + b0 * G, G, G, wbp + jb * G * L, L, 0,
                                           tile);
          for (int64_t q = 0; q < rows; ++q) {
            scalar_t* d = dhp + (b0 + q) * H + j0;
            using V = Vectorized<scalar_t>;
            (V::loadu(d, nl) + V::loadu(tile + q * L, nl)).store(d, nl);
          }
        }
      }
    }
  });
  for (int64_t p = 1; p < P; ++p)
    for (int64_t j = 0; j < 3 * H; ++j) acc[j] += acc[p * 3 * H + j];
  const double *acc_tau = acc.data(), *acc_shift = acc_tau + H, *acc_r = acc_shift + H;
  // d W_hh = sum_n da_n^T h_{n-1}: two GEMMs over all steps instead of one per step.
  Tensor dw = at::mm(da[0].t(), h0);
  if (T > 1) dw.addmm_(da.narrow(0, 1, T - 1).reshape({-1, G}).t(),
                       out.narrow(0, 0, T - 1).reshape({-1, H}));
  auto dopt = tau.options();
  Tensor dtau = at::empty({H}, dopt), dshift = at::empty({H}, dopt), dr = at::empty({H}, dopt);
  const double* taup = dptr(tau);
  for (int64_t j = 0; j < H; ++j) {
    dtau.data_ptr<double>()[j] = -acc_tau[j] / (taup[j] * taup[j]);
    dshift.data_ptr<double>()[j] = -acc_shift[j] / taup[j];
    dr.data_ptr<double>()[j] = acc_r[j];
  }
  return {da, dw, dtau, dshift, dr, dh, dc};
}

// Dot product of two contiguous rows, vectorised with a tail.
template <typename scalar_t>
inline scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t n) {
  using V = Vectorized<scalar_t>;
  V acc(scalar_t(0));
  int64_t j = 0;
  for (; j + V::size() <= n; j += V::size()) acc = acc + V::loadu(a + j) * V::loadu(b + j);
  scalar_t lanes[V::size()];
  acc.store(lanes);
  scalar_t s = 0;
  for (int64_t l = 0; l < V::size(); ++l) s += lanes[l];
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t x) { return scalar_t(1) / (scalar_t(1) + std::exp(-x)); }

template <typename scalar_t>
std::vector<Tensor> sparse_forward_impl(const Tensor& x, const Tensor& t, const Tensor& mask,
                                        const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                        const Tensor& tau, const Tensor& shift, const Tensor& r,
                                        const Tensor& h0, const Tensor& c0) {
  const int64_t T = x.size(0), B = x.size(1), F = x.size(2), H = w_hh.size(1);
  Tensor out = at::empty({T, B, H}, x.options());
  Tensor h = h0.clone(), c = c0.clone();
  Tensor counts = at::zeros({H}, x.options().dtype(at::kLong));
  const scalar_t *xp = x.data_ptr<scalar_t>(), *wi = w_ih.data_ptr<scalar_t>();
  const scalar_t* wh = w_hh.data_ptr<scalar_t>();
  const scalar_t* bp = bias.numel() ? bias.data_ptr<scalar_t>() : nullptr;
  const double* tp = dptr(t);
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;
  scalar_t *hp = h.data_ptr<scalar_t>(), *cp = c.data_ptr<scalar_t>();
  int64_t* cnt = counts.data_ptr<int64_t>();
  const GateParams gp(tau, shift, r);
  std::vector<int64_t> open(H);
  std::vector<scalar_t> kopen(H), hnew(H), cnew(H);
  for (int64_t n = 0; n < T; ++n) {
    for (int64_t b = 0; b < B; ++b) {
      scalar_t* hb = hp + b * H;
      scalar_t* cb = cp + b * H;
      scalar_t* ob = out.data_ptr<scalar_t>() + (n * B + b) * H;
      if (mp == nullptr || mp[n * B + b]) {
        int64_t m = 0;
        for (int64_t j = 0; j < H; ++j) {  // leak 0: a closed neuron has k = 0 exactly
          const double k = time_gate(tp[n * B + b], gp, j, 0.0).k;
          if (k > 0) {
            open[m] = j;
            kopen[m++] = static_cast<scalar_t>(k);
          }
        }
        const scalar_t* xb = xp + (n * B + b) * F;
        for (int64_t q = 0; q < m; ++q) {  // new state of the open neurons, from the old h
          const int64_t j = open[q];
          scalar_t pre[4];
          for (int64_t gi = 0; gi < 4; ++gi) {
            const int64_t row = gi * H + j;
            pre[gi] = (bp ? bp[row] : scalar_t(0)) + dot(wi + row * F, xb, F) +
                      dot(wh + row * H, hb, H);
          }
          const scalar_t ct = sigmoid(pre[1]) * cb[j] + sigmoid(pre[0]) * std::tanh(pre[2]);
          const scalar_t ht = sigmoid(pre[3]) * std::tanh(ct);
          hnew[q] = hb[j] + kopen[q] * (ht - hb[j]);
          cnew[q] = cb[j] + kopen[q] * (ct - cb[j]);
        }
        for (int64_t q = 0; q < m; ++q) {
          hb[open[q]] = hnew[q];
          cb[open[q]] = cnew[q];
          ++cnt[open[q]];
        }
      }
      std::copy(hb, hb + H, ob);
    }
  }
  return {out, h, c, counts};
}

void check_cpu(const Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), name, " must be a contiguous CPU tensor");
}

std::vector<Tensor> fused_forward(Tensor xw, Tensor t, Tensor mask, Tensor w_hh, Tensor tau,
                                  Tensor shift, Tensor r, Tensor h0, Tensor c0, double leak,
                                  bool save) {
  for (auto* p : {&xw, &t, &w_hh, &tau, &shift, &r, &h0, &c0}) check_cpu(*p, "fused_forward input");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "plstm_fused_forward", [&] {
    res = fused_forward_impl<scalar_t>(xw, t, mask, w_hh, tau, shift, r, h0, c0, leak, save);
  });
  return res;
}

std::vector<Tensor> fused_backward(Tensor gout, Tensor ghn, Tensor gcn, Tensor out, Tensor call,
                                   Tensor acts, Tensor tct, Tensor kall, Tensor code,
                                   Tensor t, Tensor w_hh, Tensor tau, Tensor shift, Tensor r,
                                   Tensor h0, Tensor c0, double leak, bool need_r) {
  for (auto* p : {&gout, &ghn, &gcn}) check_cpu(*p, "fused_backward gradient");
  std::vector<Tensor> res;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "plstm_fused_backward", [&] {
    res = fused_backward_impl<scalar_t>(gout, ghn, gcn, out, call, acts, tct, kall, code, t,
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fused_forward", &fused_forward, "Phased LSTM layer forward (fused time gate)");
  m.def("fused_backward", &fused_backward, "Phased LSTM layer BPTT");
  m.def("sparse_forward", &sparse_forward, "Phased LSTM layer, event-driven inference");
}
