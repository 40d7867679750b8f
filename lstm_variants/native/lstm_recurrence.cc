// The LSTM recurrence of Greff et al. (2017), every variant but FGR, as two XLA FFI CPU kernels.
//
// Why by hand: on the CPU, XLA runs a `lax.scan` step as a dozen or more separate kernels
// (thunks), each costing a few microseconds to launch at H = 128, which is more than their
// arithmetic (benchmarks/README.md). No maintained library has a fused LSTM kernel for XLA's CPU
// backend (cuDNN's is GPU-only and has no peepholes or ablation flags), so the whole time loop is
// written here: one call runs all T steps, forward or backward.
//
// Equations (LSTMCell's docstring; y' = y^{t-1}, c' = c^{t-1}, pre = px_t + y' R, sigma(x) is
// computed as (1 + tanh(x / 2)) / 2 as the Python cell does):
//
//   z = g(pre_z)                   i = sigma(pre_i + p_i * c')    f = sigma(pre_f + p_f * c')
//   c = z * i + c' * f             o = sigma(pre_o + p_o * c)     y = h(c) * o
//
// with each flag of `Flags` removing a gate (its value 1), coupling f = 1 - i (CIFG), or making g
// or h the identity. A step whose mask is 0 keeps the carry and outputs 0.
//
// The backward kernel recomputes the gates from the stored pre-activations and runs the pullback
// of LSTMCell.step_vjp; it returns the pre-activation cotangents d_pre (which are the cotangents
// of px and of the products y' R), so the caller forms dR = sum_t y'^T d_pre_t as one matrix
// product after the loop, as the XLA fast path does.
//
// Arrays are row-major float32. Leading axes before the last three (a vmapped population of
// trials, `vmap_method="broadcast_all"`) are independent problems.
//
// Two threads: a step's product is too small to split (16 x 128 by 128 x 512 takes ~20 us), but
// independent problems, or the two halves of a batch, can run side by side. A call hands half its
// work to a thread of XLA's own intra-op pool (`run_parts`), which otherwise waits while the call
// runs: on one device the training step got 1.2x faster (benchmarks/README.md, session 28).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int kWidth = 16;
#else
constexpr int kWidth = 8;
#endif
typedef float Vec __attribute__((vector_size(kWidth * sizeof(float)), aligned(4)));

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

// One register block of C += A @ B: MR rows of A and C, NV vectors of columns of B and C.
template <int MR, int NV>
inline void gemm_block(int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  Vec acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = load(C + i * ldc + v * kWidth);
  for (int k = 0; k < K; ++k) {
    Vec b[NV];
    for (int v = 0; v < NV; ++v) b[v] = load(B + k * ldb + v * kWidth);
    for (int i = 0; i < MR; ++i) {
      const float a = A[i * lda + k];
      for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) store(C + i * ldc + v * kWidth, acc[i][v]);
}

template <int MR>
void gemm_rows(int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  int n = 0;
  for (; n + 2 * kWidth <= N; n += 2 * kWidth) gemm_block<MR, 2>(K, A, lda, B + n, ldb, C + n, ldc);
  for (; n + kWidth <= N; n += kWidth) gemm_block<MR, 1>(K, A, lda, B + n, ldb, C + n, ldc);
  for (; n < N; ++n)
    for (int i = 0; i < MR; ++i) {
      float s = C[i * ldc + n];
      for (int k = 0; k < K; ++k) s += A[i * lda + k] * B[k * ldb + n];
      C[i * ldc + n] = s;
    }
}

// C[M][N] += A[M][K] @ B[K][N]. The matrices of one step are small (16 x 128 by 128 x 512 on the
// JSB shape): register blocks of 8 rows by two vectors were the fastest of the shapes measured.
void gemm_accumulate(int M, int N, int K, const float* A, int lda, const float* B, int ldb,
                     float* C, int ldc) {
  int m = 0;
  for (; m + 8 <= M; m += 8) gemm_rows<8>(N, K, A + m * lda, lda, B, ldb, C + m * ldc, ldc);
  if (m + 4 <= M) {
    gemm_rows<4>(N, K, A + m * lda, lda, B, ldb, C + m * ldc, ldc);
    m += 4;
  }
  if (m + 2 <= M) {
    gemm_rows<2>(N, K, A + m * lda, lda, B, ldb, C + m * ldc, ldc);
    m += 2;
  }
  if (m < M) gemm_rows<1>(N, K, A + m * lda, lda, B, ldb, C + m * ldc, ldc);
}

template <class V>
inline V load_as(const float* p);
template <>
inline float load_as<float>(const float* p) {
  return *p;
}
template <>
inline Vec load_as<Vec>(const float* p) {
  return load(p);
}
inline void store_as(float* p, float v) { *p = v; }
inline void store_as(float* p, Vec v) { store(p, v); }

// tanh as XLA's CPU backend computes it, to the bit (jaxlib 0.10.2; tests/test_native_lstm.py): a
// rational approximation on [-7.9988, 7.9988], +-1 beyond, x itself for |x| < 0.0004, NaN for
// NaN. Written for a scalar or a vector, so that the compiler vectorises it.
template <class V>
inline V tanh_approx(V x) {
  const float bound = 7.99881172180175781f;
  const V zero = V{};  // not 0 * x, which is NaN for an infinite x
  V clamped = x < -bound ? zero - bound : x;
  clamped = clamped > bound ? zero + bound : clamped;
  const V x2 = clamped * clamped;
  V p = zero - 2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * clamped;
  V q = zero + 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const V ratio = p / q;
  const V magnitude = x < 0.0f ? -x : x;
  const V saturated = x > bound ? zero + 1.0f : (x < -bound ? zero - 1.0f : ratio);
  return magnitude < 0.0004f ? x : saturated;
}

template <class V>
inline V sigmoid(V x) {
  return 0.5f * tanh_approx<V>(0.5f * x) + 0.5f;
}

// Must match lstm_variants/native_lstm.py's FLAGS.
enum Flags : int64_t {
  kInputGate = 1,
  kForgetGate = 2,
  kOutputGate = 4,
  kCoupled = 8,
  kInputTanh = 16,
  kOutputTanh = 32,
  kPeepholes = 64,
};

// Where each gate's block starts in the fused pre-activation (z, i, f, o; absent ones skipped),
// the same order as LSTMCell.gates(); -1 for a gate without parameters.
struct Layout {
  int64_t flags;
  int H, N, z, i, f, o;
  Layout(int64_t flags, int H) : flags(flags), H(H) {
    int g = 0;
    z = g++ * H;
    i = (flags & kInputGate) ? g++ * H : -1;
    f = ((flags & kForgetGate) && !(flags & kCoupled)) ? g++ * H : -1;
    o = (flags & kOutputGate) ? g++ * H : -1;
    N = g * H;
  }
};

// The gates of hidden units [h, h + width of V) of one sequence, from its pre-activation row.
template <class V>
struct Gates {
  V c_prev, z, i, f, c, o, h_c;
  Gates(const Layout& L, const float* pre, const float* c_prev_row, const float* peep, int h) {
    const bool peepholes = L.flags & kPeepholes;
    const V one = V{} + 1.0f;
    c_prev = load_as<V>(c_prev_row + h);
    const V z_bar = load_as<V>(pre + L.z + h);
    z = (L.flags & kInputTanh) ? tanh_approx<V>(z_bar) : z_bar;
    i = one, f = one, o = one;
    if (L.i >= 0) {
      V bar = load_as<V>(pre + L.i + h);
      if (peepholes) bar += load_as<V>(peep + h) * c_prev;
      i = sigmoid<V>(bar);
    }
    if (L.flags & kCoupled) {
      f = 1.0f - i;
    } else if (L.f >= 0) {
      V bar = load_as<V>(pre + L.f + h);
      if (peepholes) bar += load_as<V>(peep + L.H + h) * c_prev;
      f = sigmoid<V>(bar);
    }
    c = z * i + c_prev * f;
    if (L.o >= 0) {
      V bar = load_as<V>(pre + L.o + h);
      if (peepholes) bar += load_as<V>(peep + 2 * L.H + h) * c;
      o = sigmoid<V>(bar);
    }
    h_c = (L.flags & kOutputTanh) ? tanh_approx<V>(c) : c;
  }
};

template <class V>
inline void forward_units(const Layout& L, const float* pre, const float* c_prev, const float* peep,
                          float* c_new, float* y_new, int h) {
  const Gates<V> g(L, pre, c_prev, peep, h);
  store_as(c_new + h, g.c);
  store_as(y_new + h, g.h_c * g.o);
}

// The pullback of one step (LSTMCell.step_vjp's equations) for units [h, h + width of V):
// reads the cell-state cotangent dc (updated in place to dc') and the output cotangent dy,
// writes d_pre and adds to the peephole gradients d_peep.
template <class V>
inline void backward_units(const Layout& L, const float* pre, const float* c_prev,
                           const float* peep, const float* dy_row, float* dc_row, float* d_pre,
                           float* d_peep, int h) {
  const bool peepholes = L.flags & kPeepholes;
  const Gates<V> g(L, pre, c_prev, peep, h);
  const V dy = load_as<V>(dy_row + h);
  V dc = load_as<V>(dc_row + h);
  dc += (L.flags & kOutputTanh) ? dy * g.o * (1.0f - g.h_c * g.h_c) : dy * g.o;
  if (L.o >= 0) {
    const V d_o = dy * g.h_c * g.o * (1.0f - g.o);
    if (peepholes) {
      dc += d_o * load_as<V>(peep + 2 * L.H + h);
      store_as(d_peep + 2 * L.H + h, load_as<V>(d_peep + 2 * L.H + h) + d_o * g.c);
    }
    store_as(d_pre + L.o + h, d_o);
  }
  const V d_z = (L.flags & kInputTanh) ? dc * g.i * (1.0f - g.z * g.z) : dc * g.i;
  store_as(d_pre + L.z + h, d_z);
  V dc_prev = (L.f >= 0 || (L.flags & kCoupled)) ? dc * g.f : dc;
  if (L.i >= 0) {
    const V d_i = ((L.flags & kCoupled) ? dc * (g.z - g.c_prev) : dc * g.z) * g.i * (1.0f - g.i);
    store_as(d_pre + L.i + h, d_i);
    if (peepholes) {
      dc_prev += d_i * load_as<V>(peep + h);
      store_as(d_peep + h, load_as<V>(d_peep + h) + d_i * g.c_prev);
    }
  }
  if (L.f >= 0) {
    const V d_f = dc * g.c_prev * g.f * (1.0f - g.f);
    store_as(d_pre + L.f + h, d_f);
    if (peepholes) {
      dc_prev += d_f * load_as<V>(peep + L.H + h);
      store_as(d_peep + L.H + h, load_as<V>(d_peep + L.H + h) + d_f * g.c_prev);
    }
  }
  store_as(dc_row + h, dc_prev);
}

// Whether any of the B sequences has step t (mask_t = the mask's row t). A step none has is
// skipped, forward and backward: the carry stays, the outputs and cotangents are 0 (what the
// equations give for a padded step). With one sequence per update, as Greff trained, that is
// every step after the sequence's end: on JSB Chorales padded to 128 steps, 54 % of them.
inline bool any_active(const float* mask_t, int B) {
  for (int b = 0; b < B; ++b)
    if (mask_t[b] != 0.0f) return true;
  return false;
}

// One problem (no leading axes). Shapes: px, pre (T, B, N); r (H, N); peep (3, H); mask (T, B);
// c0, y0, c_final, y_final (B, H); ys, c_before, y_before (T, B, H). With pre null (a forward
// pass nothing will differentiate) the residuals pre, c_before and y_before are not kept.
void forward(const Layout& L, int T, int B, int b0, int nb, const float* px, const float* r,
             const float* peep, const float* mask, const float* c0, const float* y0, float* ys,
             float* c_final, float* y_final, float* pre, float* c_before, float* y_before) {
  const int H = L.H, N = L.N;
  std::vector<float> c(c0 + b0 * H, c0 + (b0 + nb) * H), y(y0 + b0 * H, y0 + (b0 + nb) * H);
  std::vector<float> c_new(nb * H), y_new(nb * H);
  std::vector<float> scratch(pre == nullptr ? nb * N : 0);
  for (int t = 0; t < T; ++t) {
    const size_t row_n = static_cast<size_t>(t) * B * N + static_cast<size_t>(b0) * N;
    const size_t row_h = static_cast<size_t>(t) * B * H + static_cast<size_t>(b0) * H;
    const float* mask_t = mask + t * B + b0;
    float* pre_t = pre == nullptr ? scratch.data() : pre + row_n;
    std::memcpy(pre_t, px + row_n, sizeof(float) * nb * N);
    if (pre != nullptr) {
      std::memcpy(c_before + row_h, c.data(), sizeof(float) * nb * H);
      std::memcpy(y_before + row_h, y.data(), sizeof(float) * nb * H);
    }
    float* ys_t = ys + row_h;
    if (!any_active(mask_t, nb)) {
      std::memset(ys_t, 0, sizeof(float) * nb * H);
      continue;
    }
    gemm_accumulate(nb, N, H, y.data(), H, r, N, pre_t, N);
    for (int b = 0; b < nb; ++b) {
      const float* pre_b = pre_t + b * N;
      int h = 0;
      for (; h + kWidth <= H; h += kWidth)
        forward_units<Vec>(L, pre_b, c.data() + b * H, peep, c_new.data() + b * H,
                           y_new.data() + b * H, h);
      for (; h < H; ++h)
        forward_units<float>(L, pre_b, c.data() + b * H, peep, c_new.data() + b * H,
                             y_new.data() + b * H, h);
      if (mask_t[b] != 0.0f) {
        std::memcpy(c.data() + b * H, c_new.data() + b * H, sizeof(float) * H);
        std::memcpy(y.data() + b * H, y_new.data() + b * H, sizeof(float) * H);
        std::memcpy(ys_t + b * H, y_new.data() + b * H, sizeof(float) * H);
      } else {
        std::memset(ys_t + b * H, 0, sizeof(float) * H);
      }
    }
  }
  std::memcpy(c_final + b0 * H, c.data(), sizeof(float) * nb * H);
  std::memcpy(y_final + b0 * H, y.data(), sizeof(float) * nb * H);
}

// One problem. Shapes: pre, d_pre (T, B, N); c_before, d_ys (T, B, H); r_t (N, H), R transposed;
// peep, d_peep (3, H); mask (T, B); d_c_final, d_y_final, d_c0, d_y0 (B, H).
void backward(const Layout& L, int T, int B, int b0, int nb, const float* pre,
              const float* c_before, const float* r_t, const float* peep, const float* mask,
              const float* d_ys, const float* d_c_final, const float* d_y_final, float* d_pre,
              float* d_peep, float* d_c0, float* d_y0) {
  const int H = L.H, N = L.N;
  std::vector<float> dc(d_c_final + b0 * H, d_c_final + (b0 + nb) * H);
  std::vector<float> dy_carry(d_y_final + b0 * H, d_y_final + (b0 + nb) * H);
  std::vector<float> dy(H), dy_prev(nb * H);
  std::memset(d_peep, 0, sizeof(float) * 3 * H);
  for (int t = T - 1; t >= 0; --t) {
    const size_t row_n = static_cast<size_t>(t) * B * N + static_cast<size_t>(b0) * N;
    const size_t row_h = static_cast<size_t>(t) * B * H + static_cast<size_t>(b0) * H;
    const float* mask_t = mask + t * B + b0;
    const float* pre_t = pre + row_n;
    const float* c_t = c_before + row_h;
    const float* d_ys_t = d_ys + row_h;
    float* d_pre_t = d_pre + row_n;
    for (int b = 0; b < nb; ++b) {
      float* d_pre_b = d_pre_t + b * N;
      if (mask_t[b] == 0.0f) {
        std::memset(d_pre_b, 0, sizeof(float) * N);
        std::memcpy(dy_prev.data() + b * H, dy_carry.data() + b * H, sizeof(float) * H);
        continue;
      }
      std::memset(dy_prev.data() + b * H, 0, sizeof(float) * H);
      for (int h = 0; h < H; ++h) dy[h] = dy_carry[b * H + h] + d_ys_t[b * H + h];
      const float* pre_b = pre_t + b * N;
      int h = 0;
      for (; h + kWidth <= H; h += kWidth)
        backward_units<Vec>(L, pre_b, c_t + b * H, peep, dy.data(), dc.data() + b * H, d_pre_b,
                            d_peep, h);
      for (; h < H; ++h)
        backward_units<float>(L, pre_b, c_t + b * H, peep, dy.data(), dc.data() + b * H, d_pre_b,
                              d_peep, h);
    }
    if (any_active(mask_t, nb)) gemm_accumulate(nb, H, N, d_pre_t, N, r_t, H, dy_prev.data(), H);
    dy_carry.swap(dy_prev);
  }
  std::memcpy(d_c0 + b0 * H, dc.data(), sizeof(float) * nb * H);
  std::memcpy(d_y0 + b0 * H, dy_carry.data(), sizeof(float) * nb * H);
}

// Runs work(0), ..., work(count - 1), on the calling thread and on one of XLA's intra-op pool.
// Each part goes to whichever thread claims it first, and the caller waits only for parts that
// are already running. So when the pool's other thread is busy (another device's operations, or
// its own kernel call) the caller runs every part itself: it never waits for a queued task,
// which could deadlock two devices' kernel calls waiting for each other's threads.
struct Parts {
  Parts(int64_t count, std::function<void(int64_t)> work) : count(count), work(std::move(work)) {}
  const int64_t count;
  const std::function<void(int64_t)> work;
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mutex;
  std::condition_variable finished;

  void claim() {
    for (int64_t p; (p = next.fetch_add(1)) < count;) {
      work(p);
      if (done.fetch_add(1) + 1 == count) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }

  // The halves are about equal, so the other usually ends within microseconds: yield for a
  // while, then block, since the thread running it may share a core with this one (another
  // process's work, parallel test workers).
  void wait() {
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (done.load() < count && std::chrono::steady_clock::now() < spin_until)
      std::this_thread::yield();
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [this] { return done.load() == count; });
  }
};

// Below this many multiply-adds a call (T * B * H * N per problem) is not split: handing a part
// to another thread costs tens of microseconds, more than such a part takes.
constexpr int64_t kMinSplitWork = int64_t{1} << 22;

void run_parts(ffi::ThreadPool& pool, int64_t count, int64_t work_size,
               std::function<void(int64_t)> work) {
  // On one core (a pinned job: a pool of one thread) a second part has nowhere to run.
  if (count <= 1 || work_size < kMinSplitWork || pool.num_threads() < 2) {
    for (int64_t p = 0; p < count; ++p) work(p);
    return;
  }
  // Shared with the pool's task, which may start after this call has returned (every part
  // claimed by then): it finds nothing left to claim and only drops its reference.
  auto parts = std::make_shared<Parts>(count, std::move(work));
  pool.Schedule([parts]() { parts->claim(); });
  parts->claim();
  parts->wait();
}

int64_t problems(const ffi::Buffer<ffi::F32>& x, int trailing_axes) {
  auto dims = x.dimensions();
  int64_t count = 1;
  for (size_t k = 0; k + trailing_axes < dims.size(); ++k) count *= dims[k];
  return count;
}

int64_t size_of_trailing(const ffi::Buffer<ffi::F32>& x, int trailing_axes) {
  auto dims = x.dimensions();
  int64_t count = 1;
  for (size_t k = dims.size() - trailing_axes; k < dims.size(); ++k) count *= dims[k];
  return count;
}

// A call's work is split into parts for two threads (run_parts): a vmapped population's
// members, one part each, or else the batch's rows, in two halves. The parts depend on the shapes
// alone, so the numbers do not depend on which threads were free.
int rows_per_part(int B) { return B >= 2 ? (B + 1) / 2 : B; }

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> px, ffi::Buffer<ffi::F32> r,
                   ffi::Buffer<ffi::F32> peep, ffi::Buffer<ffi::F32> mask,
                   ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> y0, int64_t flags,
                   ffi::ResultBuffer<ffi::F32> ys, ffi::ResultBuffer<ffi::F32> c_final,
                   ffi::ResultBuffer<ffi::F32> y_final, ffi::ResultBuffer<ffi::F32> pre,
                   ffi::ResultBuffer<ffi::F32> c_before, ffi::ResultBuffer<ffi::F32> y_before) {
  auto dims = px.dimensions();
  if (dims.size() < 3) return ffi::Error::InvalidArgument("px must be (..., T, B, N)");
  const int T = dims[dims.size() - 3], B = dims[dims.size() - 2];
  const int H = c0.dimensions().back();
  const Layout L(flags, H);
  if (dims.back() != L.N) return ffi::Error::InvalidArgument("px's last axis is not the gates' width");
  const int64_t n = problems(px, 3);
  const bool keep = pre->element_count() != 0;
  const int64_t seq = static_cast<int64_t>(T) * B;
  const int64_t work_size = n * seq * H * L.N;
  auto one = [&](int64_t k, int b0, int nb) {
    forward(L, T, B, b0, nb, px.typed_data() + k * seq * L.N, r.typed_data() + k * H * L.N,
            peep.typed_data() + k * 3 * H, mask.typed_data() + k * seq,
            c0.typed_data() + k * B * H, y0.typed_data() + k * B * H,
            ys->typed_data() + k * seq * H, c_final->typed_data() + k * B * H,
            y_final->typed_data() + k * B * H, keep ? pre->typed_data() + k * seq * L.N : nullptr,
            keep ? c_before->typed_data() + k * seq * H : nullptr,
            keep ? y_before->typed_data() + k * seq * H : nullptr);
  };
  if (n > 1) {
    run_parts(pool, n, work_size, [&](int64_t k) { one(k, 0, B); });
  } else if (n == 1) {
    const int rows = rows_per_part(B);
    run_parts(pool, (B + rows - 1) / rows, work_size, [&](int64_t p) {
      const int b0 = static_cast<int>(p) * rows;
      one(0, b0, std::min(B - b0, rows));
    });
  }
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> pre,
                    ffi::Buffer<ffi::F32> c_before, ffi::Buffer<ffi::F32> r_t,
                    ffi::Buffer<ffi::F32> peep, ffi::Buffer<ffi::F32> mask,
                    ffi::Buffer<ffi::F32> d_ys, ffi::Buffer<ffi::F32> d_c_final,
                    ffi::Buffer<ffi::F32> d_y_final, int64_t flags,
                    ffi::ResultBuffer<ffi::F32> d_pre, ffi::ResultBuffer<ffi::F32> d_peep,
                    ffi::ResultBuffer<ffi::F32> d_c0, ffi::ResultBuffer<ffi::F32> d_y0) {
  auto dims = pre.dimensions();
  if (dims.size() < 3) return ffi::Error::InvalidArgument("pre must be (..., T, B, N)");
  const int T = dims[dims.size() - 3], B = dims[dims.size() - 2];
  const int H = d_c_final.dimensions().back();
  const Layout L(flags, H);
  if (dims.back() != L.N) return ffi::Error::InvalidArgument("pre's last axis is not the gates' width");
  const int64_t n = problems(pre, 3);
  const int64_t seq = static_cast<int64_t>(T) * B;
  const int64_t work_size = n * seq * H * L.N;
  auto one = [&](int64_t k, int b0, int nb, float* d_peep_k) {
    backward(L, T, B, b0, nb, pre.typed_data() + k * seq * L.N,
             c_before.typed_data() + k * seq * H, r_t.typed_data() + k * L.N * H,
             peep.typed_data() + k * 3 * H, mask.typed_data() + k * seq,
             d_ys.typed_data() + k * seq * H, d_c_final.typed_data() + k * B * H,
             d_y_final.typed_data() + k * B * H, d_pre->typed_data() + k * seq * L.N, d_peep_k,
             d_c0->typed_data() + k * B * H, d_y0->typed_data() + k * B * H);
  };
  if (n > 1) {
    run_parts(pool, n, work_size,
              [&](int64_t k) { one(k, 0, B, d_peep->typed_data() + k * 3 * H); });
  } else if (n == 1) {
    const int rows = rows_per_part(B);
    const int64_t parts = (B + rows - 1) / rows;
    // Each part sums its own rows' peephole gradients; the parts' sums are added in order.
    std::vector<float> partial(parts * 3 * H);
    run_parts(pool, parts, work_size, [&](int64_t p) {
      const int b0 = static_cast<int>(p) * rows;
      one(0, b0, std::min(B - b0, rows), partial.data() + p * 3 * H);
    });
    float* out = d_peep->typed_data();
    for (int j = 0; j < 3 * H; ++j) {
      float sum = partial[j];
      for (int64_t p = 1; p < parts; ++p) sum += partial[p * 3 * H + j];
      out[j] = sum;
    }
  }
  return ffi::Error::Success();
}

}  // namespace

using F32 = ffi::Buffer<ffi::F32>;

XLA_FFI_DEFINE_HANDLER_SYMBOL(LstmRecurrenceForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()  // px
                                  .Arg<F32>()  // r
                                  .Arg<F32>()  // peep
                                  .Arg<F32>()  // mask
                                  .Arg<F32>()  // c0
                                  .Arg<F32>()  // y0
                                  .Attr<int64_t>("flags")
                                  .Ret<F32>()  // ys
                                  .Ret<F32>()  // c_final
                                  .Ret<F32>()  // y_final
                                  .Ret<F32>()  // pre
                                  .Ret<F32>()  // c_before
                                  .Ret<F32>());  // y_before

XLA_FFI_DEFINE_HANDLER_SYMBOL(LstmRecurrenceBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()  // pre
                                  .Arg<F32>()  // c_before
                                  .Arg<F32>()  // r_t
                                  .Arg<F32>()  // peep
                                  .Arg<F32>()  // mask
                                  .Arg<F32>()  // d_ys
                                  .Arg<F32>()  // d_c_final
                                  .Arg<F32>()  // d_y_final
                                  .Attr<int64_t>("flags")
                                  .Ret<F32>()  // d_pre
                                  .Ret<F32>()  // d_peep
                                  .Ret<F32>()  // d_c0
                                  .Ret<F32>());  // d_y0
