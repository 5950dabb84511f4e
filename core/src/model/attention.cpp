// Causal grouped-query attention with a hand-written backward.
//
// Layout: the rep = H / KV query heads that read one kv head are interleaved per position,
// q: (B*KV, S*rep, hd) with row = pos * rep + r, so each kv head is one batched GEMM and
// k, v are never expanded to H heads. Causality is used to skip work: query rows are cut into
// blocks of positions, and block i multiplies only against the keys [0, end of block i), so
// about half of the S x S score square is never computed (nb blocks: (nb + 1) / (2 nb) of it).
#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu_kernels/cpu_kernels.h"
#include "model/blas_gemm.h"

namespace unipool {

namespace {

using torch::autograd::AutogradContext;

// a @ b for every batch entry into a new (BK, M, N) tensor (see blas_gemm.h: at::bmm's
// result without its three tensor views per batch entry).
at::Tensor batched_mm(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  bmm_into(out, a, b, 0.0f);
  return out;
}
using torch::autograd::variable_list;

struct Block {
  int64_t first_pos, positions, width;  // query positions [first, first+positions), keys [0, width)
};

std::vector<Block> causal_blocks(int64_t S) {
  const int64_t n_blocks = std::clamp<int64_t>(S / 32, 1, 8);
  const int64_t size = (S + n_blocks - 1) / n_blocks;
  std::vector<Block> blocks;
  for (int64_t first = 0; first < S; first += size) {
    const int64_t positions = std::min(size, S - first);
    blocks.push_back({first, positions, first + positions});
  }
  return blocks;
}

// One batch's block of probabilities (rows x width), softmax or its backward, in place.
// Float goes to the vectorised loops; other types (the double-precision tests) run plainly.
template <bool kBackward>
void softmax_rows(float* p, float* dp, int64_t rows, int64_t width, int64_t rep, int64_t first_pos,
                  double scale) {
  if (kBackward) {
    cpu::softmax_backward_block(p, dp, rows, width, rep, first_pos, float(scale));
  } else {
    cpu::causal_softmax_block(p, rows, width, rep, first_pos, float(scale));
  }
}

template <bool kBackward, typename T>
void softmax_rows(T* p, T* dp, int64_t rows, int64_t width, int64_t rep, int64_t first_pos,
                  double scale) {
  const T sc = T(scale);
  for (int64_t r = 0; r < rows; ++r) {
    T* row = p + r * width;
    const int64_t valid = std::min(width, first_pos + r / rep + 1);
    if (kBackward) {
      T* d = dp + r * width;
      T dot = 0;
      for (int64_t j = 0; j < valid; ++j) dot += row[j] * d[j];
      for (int64_t j = 0; j < valid; ++j) d[j] = row[j] * (d[j] - dot) * sc;
      for (int64_t j = valid; j < width; ++j) d[j] = 0;
      continue;
    }
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, row[j] * sc);
    T sum = 0;
    for (int64_t j = 0; j < valid; ++j) sum += (row[j] = std::exp(row[j] * sc - mx));
    for (int64_t j = 0; j < valid; ++j) row[j] /= sum;
    for (int64_t j = valid; j < width; ++j) row[j] = 0;
  }
}

// Softmax (or its backward into dp) of one block for every batch. p, dp: (BK, rows, width).
template <bool kBackward>
void block_softmax(const at::Tensor& p, const at::Tensor& dp, int64_t rep, int64_t first_pos,
                   double scale) {
  const int64_t BK = p.size(0), rows = p.size(1), width = p.size(2);
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "block_softmax", [&] {
    scalar_t* pp = p.data_ptr<scalar_t>();
    scalar_t* dpp = kBackward ? dp.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, BK, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        softmax_rows<kBackward>(pp + b * rows * width, dpp ? dpp + b * rows * width : nullptr, rows,
                                width, rep, first_pos, scale);
      }
    });
  });
}

struct AttentionFn : public torch::autograd::Function<AttentionFn> {
  // q: (B, KV, S, rep, hd), k, v: (B, KV, S, hd) -> (B, KV, S, rep, hd)
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v) {
    const int64_t B = q.size(0), KV = q.size(1), S = q.size(2), rep = q.size(3), hd = q.size(4);
    const at::Tensor qs = q.contiguous().view({B * KV, S * rep, hd});
    const at::Tensor ks = k.contiguous().view({B * KV, S, hd});
    const at::Tensor vs = v.contiguous().view({B * KV, S, hd});
    const double scale = 1.0 / std::sqrt(double(hd));
    std::vector<at::Tensor> probs, outs;
    for (const Block& blk : causal_blocks(S)) {
      const at::Tensor qi = qs.narrow(1, blk.first_pos * rep, blk.positions * rep);
      at::Tensor p = batched_mm(qi, ks.narrow(1, 0, blk.width).transpose(1, 2));  // (BK, rows, w)
      block_softmax<false>(p, at::Tensor(), rep, blk.first_pos, scale);
      outs.push_back(batched_mm(p, vs.narrow(1, 0, blk.width)));  // (BK, rows, hd)
      probs.push_back(std::move(p));
    }
    ctx->save_for_backward({qs, ks, vs});
    ctx->saved_data["probs"] = probs;
    return at::cat(outs, 1).view({B, KV, S, rep, hd});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &qs = saved[0], &ks = saved[1], &vs = saved[2];
    const auto probs = ctx->saved_data["probs"].toTensorList();
    const auto shape = grads[0].sizes();
    const int64_t B = shape[0], KV = shape[1], S = shape[2], rep = shape[3], hd = shape[4];
    const double scale = 1.0 / std::sqrt(double(hd));
    const at::Tensor d_o = grads[0].contiguous().view(qs.sizes());  // (BK, S*rep, hd)
    at::Tensor dk = at::zeros_like(ks), dv = at::zeros_like(vs);
    std::vector<at::Tensor> dqs;
    size_t i = 0;
    for (const Block& blk : causal_blocks(S)) {
      const at::Tensor p = probs.get(i++);
      const at::Tensor qi = qs.narrow(1, blk.first_pos * rep, blk.positions * rep);
      const at::Tensor doi = d_o.narrow(1, blk.first_pos * rep, blk.positions * rep);
      const at::Tensor ki = ks.narrow(1, 0, blk.width), vi = vs.narrow(1, 0, blk.width);
      at::Tensor dp = batched_mm(doi, vi.transpose(1, 2));  // (BK, rows, w)
      block_softmax<true>(p, dp, rep, blk.first_pos, scale);
      dqs.push_back(batched_mm(dp, ki));                                   // (BK, rows, hd)
      bmm_into(dk.narrow(1, 0, blk.width), dp.transpose(1, 2), qi, 1.0f);  // (BK, w, hd)
      bmm_into(dv.narrow(1, 0, blk.width), p.transpose(1, 2), doi, 1.0f);
    }
    return {at::cat(dqs, 1).view(shape), dk.view({B, KV, S, hd}), dv.view({B, KV, S, hd})};
  }
};

}  // namespace

at::Tensor causal_gqa_attention_grouped(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v) {
  TORCH_CHECK(q.dim() == 5 && k.dim() == 4 && v.dim() == 4, "attention: bad ranks");
  TORCH_CHECK(q.size(1) == k.size(1) && q.size(2) == k.size(2), "attention: q/k shapes differ");
  return AttentionFn::apply(q, k, v);
}

at::Tensor causal_gqa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), hd = q.size(3), KV = k.size(1);
  TORCH_CHECK(H % KV == 0, "attention: n_heads must be a multiple of n_kv_heads");
  const int64_t rep = H / KV;
  // (B, H, S, hd) -> (B, KV, S, rep, hd) and back: head j = kv * rep + r.
  const at::Tensor qg = q.view({B, KV, rep, S, hd}).transpose(2, 3);
  return causal_gqa_attention_grouped(qg, k, v).transpose(2, 3).reshape({B, H, S, hd});
}

}  // namespace unipool
