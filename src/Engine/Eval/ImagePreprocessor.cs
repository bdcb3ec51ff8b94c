using StbImageSharp;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>Where the center crop starts when the excess is odd.</summary>
public enum CropRule
{
    /// <summary>HF <c>CLIPImageProcessor</c>: top = ⌊(H − S)/2⌋; rescale by a float64 ×1/255.</summary>
    HuggingFace,

    /// <summary>open_clip / torchvision <c>CenterCrop</c>: top = round-half-even((H − S)/2); rescale by a float32 ÷255.</summary>
    OpenClip,
}

/// <summary>An 8-bit RGB image, row-major, channels interleaved.</summary>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="Rgb">Width·Height·3 bytes.</param>
public sealed record RgbImage(int Width, int Height, byte[] Rgb);

/// <summary>
/// CLIP image preprocessing: decode → RGB → bicubic resize of the short side to S (long side
/// int(S·long/short)) → center crop S×S → ×1/255 → (x − mean)/std, channels first.
/// <para>
/// The resize reproduces Pillow's <c>Image.resize(..., BICUBIC)</c> on 8-bit images
/// (libImaging/Resample.c): a separable convolution with the a = −0.5 cubic, support 2 scaled by the
/// downscale factor (antialiasing), weights normalised and rounded to 22-bit fixed point,
/// accumulation from 2²¹ with a clamp to [0, 255], the horizontal pass first into an 8-bit
/// temporary over only the rows the vertical pass reads. For PNG and other lossless inputs the
/// tensors therefore equal HF's slow (PIL) processor bit for bit.
/// </para>
/// <para>
/// Remaining differences from PIL: JPEG decoding uses stb_image's IDCT and chroma upsampling, not
/// libjpeg-turbo's, so decoded pixels (before resizing) can differ by a few levels; images with
/// alpha lose it (open_clip's <c>convert("RGB")</c>; newer HF versions composite onto white);
/// palette images are expanded to RGB before resizing, as HF does (open_clip converts after
/// the crop); 16-bit PNGs are reduced to 8 bits by stb_image. HF's "fast" (torchvision-tensor)
/// processors use a different bicubic and are not reproduced.
/// </para>
/// </summary>
public sealed class ImagePreprocessor
{
    /// <summary>OpenAI CLIP's per-channel mean (HF <c>OPENAI_CLIP_MEAN</c>).</summary>
    public static readonly float[] OpenAiMean = [0.48145466f, 0.4578275f, 0.40821073f];

    /// <summary>OpenAI CLIP's per-channel std (HF <c>OPENAI_CLIP_STD</c>).</summary>
    public static readonly float[] OpenAiStd = [0.26862954f, 0.26130258f, 0.27577711f];

    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>A preprocessor producing S×S crops.</summary>
    public ImagePreprocessor(int size, CropRule crop = CropRule.HuggingFace, float[]? mean = null, float[]? std = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size));
        Size = size;
        Crop = crop;
        Mean = mean ?? OpenAiMean;
        Std = std ?? OpenAiStd;
        if (Mean.Length != 3 || Std.Length != 3) throw new ArgumentException("mean and std need 3 channels");
    }

    /// <summary>Output side S.</summary>
    public int Size { get; }

    /// <summary>Crop rounding and rescale flavour.</summary>
    public CropRule Crop { get; }

    /// <summary>Per-channel mean.</summary>
    public float[] Mean { get; }

    /// <summary>Per-channel std.</summary>
    public float[] Std { get; }

    /// <summary>Decodes a PNG/JPEG/BMP/GIF/PNM/TGA file to 8-bit RGB; an unreadable file is <see cref="BadInputException"/>.</summary>
    public static RgbImage Decode(string path)
    {
        byte[] bytes = ReadAllBytes(path, P(path), "image");
        ImageResult img;
        try
        {
            img = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new BadInputException($"{P(path)}: not a readable image (PNG, JPEG, BMP, GIF, PNM, TGA): {OneLine(e.Message)}", e);
        }
        if (img?.Data is null || img.Width < 1 || img.Height < 1 || img.Data.Length < img.Width * img.Height * 3)
            throw new BadInputException($"{P(path)}: not a readable image");
        return new RgbImage(img.Width, img.Height, img.Data);
    }

    /// <summary>Preprocesses <paramref name="image"/> into <paramref name="dst"/> (3·S·S floats, channels first).</summary>
    public void Process(RgbImage image, Span<float> dst)
    {
        if (dst.Length != 3 * Size * Size) throw new ArgumentException($"destination must hold 3×{Size}×{Size} values");
        var (w, h) = ResizedSize(image.Width, image.Height, Size);
        var resized = ResizeBicubic(image, w, h);
        int top = CropOffset(h, Size, Crop), left = CropOffset(w, Size, Crop);
        for (int c = 0; c < 3; c++)
        {
            float mean = Mean[c], std = Std[c];
            for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                {
                    int sy = y + top, sx = x + left;
                    byte v = sy >= 0 && sy < h && sx >= 0 && sx < w ? resized.Rgb[(sy * w + sx) * 3 + c] : (byte)0;
                    float f = Crop == CropRule.HuggingFace ? (float)(v * (1.0 / 255)) : v / 255f;
                    dst[(c * Size + y) * Size + x] = (f - mean) / std;
                }
        }
    }

    /// <summary>The size after resizing the short side to <paramref name="size"/> (HF/torchvision: long = int(size·long/short)).</summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int size)
    {
        if (width <= height) return (size, (int)((long)size * height / (double)width));
        return ((int)((long)size * width / (double)height), size);
    }

    /// <summary>First kept row/column of a center crop from <paramref name="have"/> to <paramref name="want"/> (negative: zero padding).</summary>
    internal static int CropOffset(int have, int want, CropRule rule)
    {
        int excess = have - want;
        return rule == CropRule.HuggingFace
            ? (int)Math.Floor(excess / 2.0)
            : (int)Math.Round(excess / 2.0, MidpointRounding.ToEven);
    }

    /// <summary>Pillow's 8-bit BICUBIC resize (see the class remarks), horizontal pass first.</summary>
    public static RgbImage ResizeBicubic(RgbImage src, int width, int height)
    {
        bool horizontal = width != src.Width, vertical = height != src.Height;
        if (!horizontal && !vertical) return src;
        var (hBounds, hK, hSize) = Coefficients(src.Width, width);
        var (vBounds, vK, vSize) = Coefficients(src.Height, height);
        var image = src;
        int rowShift = 0;
        if (horizontal)
        {
            int first = vertical ? vBounds[0] : 0;
            int last = vertical ? vBounds[2 * height - 2] + vBounds[2 * height - 1] : src.Height;
            rowShift = first;
            var tmp = new byte[width * (last - first) * 3];
            for (int y = first; y < last; y++)
                for (int x = 0; x < width; x++)
                {
                    int xmin = hBounds[2 * x], count = hBounds[2 * x + 1];
                    for (int c = 0; c < 3; c++)
                    {
                        int acc = 1 << (PrecisionBits - 1);
                        for (int i = 0; i < count; i++) acc += src.Rgb[(y * src.Width + xmin + i) * 3 + c] * hK[x * hSize + i];
                        tmp[((y - first) * width + x) * 3 + c] = Clip8(acc);
                    }
                }
            image = new RgbImage(width, last - first, tmp);
        }
        if (!vertical) return image;
        var outRgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            int ymin = vBounds[2 * y] - rowShift, count = vBounds[2 * y + 1];
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    int acc = 1 << (PrecisionBits - 1);
                    for (int i = 0; i < count; i++) acc += image.Rgb[((ymin + i) * width + x) * 3 + c] * vK[y * vSize + i];
                    outRgb[(y * width + x) * 3 + c] = Clip8(acc);
                }
        }
        return new RgbImage(width, height, outRgb);
    }

    private static byte Clip8(int acc)
    {
        int v = acc >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    private static double Cubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    /// <summary>
    /// Pillow's <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c> for the full source range:
    /// per output index its first source index and tap count, and fixed-point weights.
    /// </summary>
    private static (int[] Bounds, int[] Weights, int KSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 2.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double ss = 1.0 / filterScale;
            int xmin = Math.Max(0, (int)(center - support + 0.5));
            int xmax = Math.Min(inSize, (int)(center + support + 0.5)) - xmin;
            double ww = 0;
            for (int x = 0; x < xmax; x++)
            {
                double w = Cubic((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                double w = ww != 0 ? k[x] / ww : k[x];
                weights[xx * ksize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return (bounds, weights, ksize);
    }
}
