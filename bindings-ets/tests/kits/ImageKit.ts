/**
 * Fake of `@kit.ImageKit`: the `image.PixelMap` that `voipCall.VoipCallAttribute.userProfile`
 * requires, and `image.createPixelMap`, which checks the buffer holds the pixels the options
 * describe, as the SDK does (401 otherwise).
 */
import { FakeBusinessError } from './BasicServicesKit';

/** The `image` namespace as the SDK declares the parts used here. */
export namespace image {
  /** Pixel formats. */
  export enum PixelMapFormat { UNKNOWN = 0, RGB_565 = 2, RGBA_8888 = 3, BGRA_8888 = 4, RGB_888 = 5, ALPHA_8 = 6 }
  /** A size in pixels. */
  export interface Size {
    /** Height. */
    height: number;
    /** Width. */
    width: number;
  }
  /** How to create a PixelMap. */
  export interface InitializationOptions {
    /** Its size. */
    size: Size;
    /** The format of the source buffer. */
    srcPixelFormat?: PixelMapFormat;
    /** The format of the PixelMap. */
    pixelFormat?: PixelMapFormat;
    /** Whether it may be edited. */
    editable?: boolean;
  }
  /** What `getImageInfo` answers. */
  export interface ImageInfo {
    /** The size. */
    size: Size;
  }
  /** An image in memory. */
  export interface PixelMap {
    /** Whether it may be edited. */
    readonly isEditable: boolean;
    /** Its size and format. */
    getImageInfo(): Promise<ImageInfo>;
    /** Bytes of pixel data. */
    getPixelBytesNumber(): number;
    /** Frees it. */
    release(): Promise<void>;
  }

  class FakePixelMap implements PixelMap {
    constructor(readonly isEditable: boolean, private readonly size: Size, private readonly bytes: number) {}
    getImageInfo(): Promise<ImageInfo> { return Promise.resolve({ size: { height: this.size.height, width: this.size.width } }); }
    getPixelBytesNumber(): number { return this.bytes; }
    release(): Promise<void> { return Promise.resolve(); }
  }

  /** Creates a PixelMap from BGRA (default) pixel data. */
  export function createPixelMap(colors: ArrayBuffer, options: InitializationOptions): Promise<PixelMap> {
    const { height, width } = options.size;
    if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
      return Promise.reject(new FakeBusinessError(401, 'Parameter error: size must be positive integers'));
    }
    const bytesPerPixel = options.srcPixelFormat === PixelMapFormat.RGB_565 ? 2 : 4;
    if (colors.byteLength < height * width * bytesPerPixel) {
      return Promise.reject(new FakeBusinessError(401, 'Parameter error: the buffer is smaller than the size needs'));
    }
    return Promise.resolve(new FakePixelMap(options.editable ?? false, options.size, height * width * 4));
  }

  /** Whether `value` is a PixelMap made by this module. */
  export function isPixelMap(value: object | undefined | null): boolean {
    return value instanceof FakePixelMap;
  }
}
