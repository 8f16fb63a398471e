/**
 * The in-memory image classification dataset every reader returns and the batch iterator consumes.
 */

/** Per-channel normalisation applied to pixels in [0, 1]: x = (p/255 − mean) / std. */
export interface Normalize {
  /** One value for all channels, or one per channel. */
  mean: number | readonly number[];
  /** One value for all channels, or one per channel. */
  std: number | readonly number[];
}

/** Images and labels of one split, all in memory. */
export interface Dataset {
  /** uint8 pixels, n*channels*height*width, sample-major then channel-planar (NCHW). */
  images: Uint8Array;
  /** uint8 class indices in [0, classes), n of them. */
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  classes: number;
  /** The normalisation the reader recommends (dataset statistics); the batch iterator uses it by default. */
  normalize?: Normalize;
}
