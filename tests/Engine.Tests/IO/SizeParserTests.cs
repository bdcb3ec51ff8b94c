using TaskMerge.Engine.IO;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class SizeParserTests
{
    [Theory]
    [InlineData("5B", 5_000_000_000L)]
    [InlineData("5b", 5_000_000_000L)]
    [InlineData("5G", 5_000_000_000L)]
    [InlineData("2GB", 2_000_000_000L)]
    [InlineData("500M", 500_000_000L)]
    [InlineData("500mb", 500_000_000L)]
    [InlineData("10K", 10_000L)]
    [InlineData("10k", 10_000L)]
    [InlineData("1T", 1_000_000_000_000L)]
    [InlineData("1.5B", 1_500_000_000L)]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("4MiB", 4L << 20)]
    [InlineData("12345", 12345L)]
    [InlineData(" 7 ", 7L)]
    [InlineData("1_000", 1000L)]
    public void Parses(string text, long want) => Assert.Equal(want, SizeParser.ParseBytes(text));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("B")]
    [InlineData("5X")]
    [InlineData("five")]
    [InlineData("-5B")]
    [InlineData("0")]
    [InlineData("0.5")]
    [InlineData("1e9")]
    [InlineData("5BB")]
    [InlineData("99999999999999999999999")]
    [InlineData("1.2.3K")]
    [InlineData("5 B x")]
    public void RejectsGarbage(string text)
    {
        var ex = Assert.Throws<BadInputException>(() => SizeParser.ParseBytes(text));
        Assert.Contains("invalid size", ex.Message);
    }
}
