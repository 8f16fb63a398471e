/** Public API of ljtrain: the graph builder, autodiff, LJ loss, models and graph assembly. */
export { GraphBuilder } from './graph/builder';
export { Value, GraphBuildError } from './graph/types';
export { backward } from './grad/backward';
export { GRAD_RULES, NON_DIFFERENTIABLE, registerGrad } from './grad/registry';
export { ljLoss, validateLJOptions, LJ_DEFAULTS } from './losses/lj';
export type { LJOptions, LJVariant } from './losses/lj';
export { crossEntropy } from './losses/cross-entropy';
export { buildModel } from './models';
export { buildGradientCore, buildNativeTrainStep, buildEval, buildInference } from './artifacts/graphs';
export { encodeModel, decodeModel, readModel } from './onnx/proto';
