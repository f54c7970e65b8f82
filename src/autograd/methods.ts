/**
 * Chainable method forms of the ops (`x.matmul(w).add(b).relu()`), installed on the Tensor
 * prototype once. The functional forms in ops/ remain the source of truth.
 */
import type { Rng } from '../kernels/random.js';
import * as ew from './ops/elementwise.js';
import * as mm from './ops/matmul.js';
import * as nn from './ops/nn.js';
import * as red from './ops/reduce.js';
import * as sh from './ops/shape.js';
import { Tensor } from './tensor-core.js';

declare module './tensor-core.js' {
  interface Tensor {
    add(other: ew.TensorLike): Tensor;
    sub(other: ew.TensorLike): Tensor;
    mul(other: ew.TensorLike): Tensor;
    div(other: ew.TensorLike): Tensor;
    neg(): Tensor;
    pow(p: number): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    gelu(approximate?: 'none' | 'tanh'): Tensor;
    abs(): Tensor;
    sum(axes?: red.Axes, keepdim?: boolean): Tensor;
    mean(axes?: red.Axes, keepdim?: boolean): Tensor;
    max(axes?: red.Axes, keepdim?: boolean): Tensor;
    matmul(other: Tensor, opts?: mm.MatmulOptions): Tensor;
    reshape(shape: readonly number[]): Tensor;
    permute(perm: readonly number[]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    slice(axis: number, start: number, end?: number): Tensor;
    unsqueeze(axis: number): Tensor;
    squeeze(axis: number): Tensor;
    broadcastTo(shape: readonly number[]): Tensor;
    expand(shape: readonly number[]): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;
    dropout(p: number, rng: Rng, training?: boolean): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (o) { return ew.add(this, o); };
P.sub = function (o) { return ew.sub(this, o); };
P.mul = function (o) { return ew.mul(this, o); };
P.div = function (o) { return ew.div(this, o); };
P.neg = function () { return ew.neg(this); };
P.pow = function (p) { return ew.pow(this, p); };
P.exp = function () { return ew.exp(this); };
P.log = function () { return ew.log(this); };
P.sqrt = function () { return ew.sqrt(this); };
P.tanh = function () { return ew.tanh(this); };
P.sigmoid = function () { return ew.sigmoid(this); };
P.relu = function () { return ew.relu(this); };
P.gelu = function (a) { return ew.gelu(this, a); };
P.abs = function () { return ew.abs(this); };
P.sum = function (a, k) { return red.sum(this, a, k); };
P.mean = function (a, k) { return red.mean(this, a, k); };
P.max = function (a, k) { return red.max(this, a, k); };
P.matmul = function (o, opts) { return mm.matmul(this, o, opts); };
P.reshape = function (s) { return sh.reshape(this, s); };
P.permute = function (p) { return sh.permute(this, p); };
P.transpose = function (a, b) { return sh.transpose(this, a, b); };
P.slice = function (a, s, e) { return sh.slice(this, a, s, e); };
P.unsqueeze = function (a) { return sh.unsqueeze(this, a); };
P.squeeze = function (a) { return sh.squeeze(this, a); };
P.broadcastTo = function (s) { return sh.broadcastTo(this, s); };
P.expand = function (s) { return sh.broadcastTo(this, s); };
P.softmax = function (a) { return nn.softmax(this, a); };
P.logSoftmax = function (a) { return nn.logSoftmax(this, a); };
P.dropout = function (p, r, t) { return nn.dropout(this, p, r, t); };
P.maskedFill = function (m, v) { return nn.maskedFill(this, m, v); };

export {};
