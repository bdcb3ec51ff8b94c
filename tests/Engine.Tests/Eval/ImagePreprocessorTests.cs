using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>Pillow-compatible bicubic resizing, HF/open_clip cropping and CLIP normalisation.</summary>
public sealed class ImagePreprocessorTests
{
    /// <summary>
    /// Pillow's resample-accuracy case: an L image of 255 − color with the top-left and
    /// bottom-right quarters (ImageDraw rectangles, inclusive) set to color, replicated to RGB.
    /// </summary>
    private static RgbImage Case(int size, byte color)
    {
        var rgb = new byte[size * size * 3];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool dark = (x <= size / 2 - 1 && y <= size / 2 - 1) || (x >= size / 2 && y >= size / 2);
                rgb.AsSpan((y * size + x) * 3, 3).Fill(dark ? color : (byte)(255 - color));
            }
        return new RgbImage(size, size, rgb);
    }

    /// <summary>Expands the top-left quarter <paramref name="hex"/> by Pillow's symmetry rules.</summary>
    private static byte[,] Sample(string hex, int size)
    {
        var v = hex.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(h => Convert.ToByte(h, 16)).ToArray();
        int q = size / 2;
        var s = new byte[size, size];
        for (int y = 0; y < q; y++)
            for (int x = 0; x < q; x++)
            {
                byte b = v[y * q + x];
                s[y, x] = b;
                s[size - y - 1, size - x - 1] = b;
                s[size - y - 1, x] = (byte)(255 - b);
                s[y, size - x - 1] = (byte)(255 - b);
            }
        return s;
    }

    // Expected values: Pillow's Tests/test_image_resample.py (TestImagingCoreResampleAccuracy,
    // test_reduce_bicubic and test_enlarge_bicubic), i.e. what PIL itself produces.
    [Theory]
    [InlineData(12, 6, "e1 e3 d4 e3 e5 d6 d4 d6 c9")]
    [InlineData(4, 8, "e1 e5 ee b9 e5 e9 f3 bc ee f3 fd c1 b9 bc c1 a2")]
    public void BicubicResizeMatchesPillowPixelForPixel(int from, int to, string quarter)
    {
        var resized = ImagePreprocessor.ResizeBicubic(Case(from, 0xE1), to, to);
        var expected = Sample(quarter, to);
        for (int y = 0; y < to; y++)
            for (int x = 0; x < to; x++)
                for (int c = 0; c < 3; c++)
                    Assert.True(expected[y, x] == resized.Rgb[(y * to + x) * 3 + c], $"pixel ({x},{y}) channel {c}: {resized.Rgb[(y * to + x) * 3 + c]:x2}, Pillow {expected[y, x]:x2}");
    }

    [Fact]
    public void ConstantImagesStayConstantAndSameSizeIsACopy()
    {
        var flat = new RgbImage(37, 23, Enumerable.Range(0, 37 * 23 * 3).Select(i => (byte)(i % 3 == 0 ? 200 : i % 3 == 1 ? 7 : 90)).ToArray());
        foreach (var (w, h) in new[] { (11, 7), (80, 41), (37, 10), (5, 23) })
        {
            var r = ImagePreprocessor.ResizeBicubic(flat, w, h);
            Assert.Equal((w, h), (r.Width, r.Height));
            for (int i = 0; i < w * h; i++) Assert.Equal([200, 7, 90], r.Rgb.AsSpan(i * 3, 3).ToArray());
        }
        Assert.Same(flat, ImagePreprocessor.ResizeBicubic(flat, 37, 23));
    }

    [Fact]
    public void ShortSideGoesToTheTargetAndTheLongSideIsTruncated()
    {
        Assert.Equal((298, 224), ImagePreprocessor.ResizedSize(640, 480, 224));
        Assert.Equal((224, 672), ImagePreprocessor.ResizedSize(100, 300, 224));
        Assert.Equal((224, 224), ImagePreprocessor.ResizedSize(50, 50, 224));
        Assert.Equal((16, 21), ImagePreprocessor.ResizedSize(30, 40, 16)); // int(16·40/30) = int(21.33)
    }

    [Fact]
    public void HfCropFloorsWhereOpenClipRoundsHalfToEven()
    {
        // Excess 3 (≡ 3 mod 4): HF 1, torchvision round(1.5) = 2. Excess 5: 2 vs round(2.5) = 2. Excess 4: 2 and 2.
        Assert.Equal(1, ImagePreprocessor.CropOffset(227, 224, CropRule.HuggingFace));
        Assert.Equal(2, ImagePreprocessor.CropOffset(227, 224, CropRule.OpenClip));
        Assert.Equal(2, ImagePreprocessor.CropOffset(229, 224, CropRule.HuggingFace));
        Assert.Equal(2, ImagePreprocessor.CropOffset(229, 224, CropRule.OpenClip));
        Assert.Equal(2, ImagePreprocessor.CropOffset(228, 224, CropRule.OpenClip));
    }

    [Fact]
    public void ProcessNormalisesWithOpenAiMeanAndStdChannelsFirst()
    {
        var grey = new RgbImage(20, 16, Enumerable.Repeat((byte)128, 20 * 16 * 3).ToArray());
        var pre = new ImagePreprocessor(8);
        var dst = new float[3 * 8 * 8];
        pre.Process(grey, dst);
        for (int c = 0; c < 3; c++)
        {
            float expected = ((float)(128 * (1.0 / 255)) - ImagePreprocessor.OpenAiMean[c]) / ImagePreprocessor.OpenAiStd[c];
            Assert.All(dst.AsSpan(c * 64, 64).ToArray(), v => Assert.Equal(expected, v));
        }
    }

    [Fact]
    public void CropPicksTheCentreOfAGradient()
    {
        // 8 wide, 11 tall, no resize needed (short side 8): rows 1..8 (HF) or 2..9 (open_clip) are kept.
        var rgb = new byte[8 * 11 * 3];
        for (int y = 0; y < 11; y++) rgb.AsSpan(y * 24, 24).Fill((byte)(y * 20));
        var img = new RgbImage(8, 11, rgb);
        var hf = new float[3 * 64];
        var oc = new float[3 * 64];
        new ImagePreprocessor(8, CropRule.HuggingFace, [0, 0, 0], [1, 1, 1]).Process(img, hf);
        new ImagePreprocessor(8, CropRule.OpenClip, [0, 0, 0], [1, 1, 1]).Process(img, oc);
        Assert.Equal(20 / 255f, hf[0], 1e-6f);
        Assert.Equal(40 / 255f, oc[0], 1e-6f);
    }

    [Fact]
    public void PngDecodesToRgbAndGreyIsReplicated()
    {
        using var dir = new TempDir();
        var px = TestImages.RandomPixels(5 * 4 * 3, 1);
        TestImages.WritePng(dir["rgb.png"], 5, 4, px);
        var img = ImagePreprocessor.Decode(dir["rgb.png"]);
        Assert.Equal((5, 4), (img.Width, img.Height));
        Assert.Equal(px, img.Rgb);
        TestImages.WritePng(dir["grey.png"], 3, 2, [1, 2, 3, 4, 5, 6], grey: true);
        var g = ImagePreprocessor.Decode(dir["grey.png"]);
        Assert.Equal([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6], g.Rgb);
        File.WriteAllText(dir["bad.png"], "not an image");
        Assert.Throws<BadInputException>(() => ImagePreprocessor.Decode(dir["bad.png"]));
    }
}
