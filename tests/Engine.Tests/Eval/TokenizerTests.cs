using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>The RoBERTa byte-level BPE on a handmade vocab.json/merges.txt.</summary>
public sealed class TokenizerTests
{
    private static readonly Dictionary<string, int> V = TinyVocab.Vocab();

    private static int Id(string token) => V[token];

    private static int Byte(char c) => V[TinyVocab.ByteChar(c).ToString()];

    [Fact]
    public void MergesApplyByRankWithinGpt2PreTokens()
    {
        using var dir = new TempDir();
        var tok = RobertaTokenizer.Load(TinyVocab.Write(dir.Path));
        // "hello world" → "hello" | "Ġworld": h e→he, l l→ll, he ll→hell, hell o→hello; Ġ w→Ġw, o r→or, Ġw or→Ġwor.
        Assert.Equal([Id("hello"), Id("Ġwor"), Byte('l'), Byte('d')], tok.EncodeContent("hello world"));
        // Two spaces: "hello", "Ġ" (\s+(?!\S)), "Ġwor", "l", "d", "!".
        Assert.Equal([Id("hello"), Byte(' '), Id("Ġwor"), Byte('l'), Byte('d'), Byte('!')], tok.EncodeContent("hello  world!"));
        // Contractions split off: "it" | "'s"; digits separate from letters; non-ASCII goes through its UTF-8 bytes.
        Assert.Equal([Byte('i'), Byte('t'), Byte('\''), Byte('s')], tok.EncodeContent("it's"));
        Assert.Equal([Id("Ġthe")], tok.EncodeContent(" the"));
        Assert.Equal([V[TinyVocab.ByteChar(0xC3).ToString()], V[TinyVocab.ByteChar(0xA9).ToString()]], tok.EncodeContent("é"));
    }

    [Fact]
    public void SpecialTokensInTheTextMapToTheirIds()
    {
        using var dir = new TempDir();
        var tok = RobertaTokenizer.Load(TinyVocab.Write(dir.Path));
        Assert.Equal([Id("hello"), Id("</s>"), Id("Ġwor")], tok.EncodeContent("hello</s> wor"));
        Assert.Equal([Id("hello"), Id("<mask>")], tok.EncodeContent("hello <mask>"));
    }

    [Fact]
    public void SingleAndPairFramingFollowRoberta()
    {
        using var dir = new TempDir();
        var tok = RobertaTokenizer.Load(TinyVocab.Write(dir.Path));
        Assert.Equal((0, 2, 1), (tok.BosId, tok.EosId, tok.PadId));
        Assert.Equal([0, Id("hello"), 2], tok.Encode("hello", null, 128));
        Assert.Equal([0, Id("hello"), 2, 2, Id("Ġthe"), 2], tok.Encode("hello", " the", 128));
    }

    [Fact]
    public void TruncationIsLongestFirstFromTheRight()
    {
        using var dir = new TempDir();
        var tok = RobertaTokenizer.Load(TinyVocab.Write(dir.Path));
        // Single: budget 6 − 2 = 4 of the 7 byte tokens of "abcdefg".
        Assert.Equal([0, Byte('a'), Byte('b'), Byte('c'), Byte('d'), 2], tok.Encode("abcdefg", null, 6));
        // Pair: budget 10 − 4 = 6 for (7, 2) → keep (4, 2); for (7, 7) → (3, 3).
        Assert.Equal([0, .. "abcd".Select(Byte), 2, 2, Byte('x'), Byte('y'), 2], tok.Encode("abcdefg", "xy", 10));
        Assert.Equal([0, .. "abc".Select(Byte), 2, 2, .. "tuv".Select(Byte), 2], tok.Encode("abcdefg", "tuvwxyz", 10));
        Assert.Equal((5, 2), RobertaTokenizer.LongestFirst(5, 2, 124));
        Assert.Equal((62, 62), RobertaTokenizer.LongestFirst(100, 100, 124));
        Assert.Equal((64, 60), RobertaTokenizer.LongestFirst(200, 60, 124));
        Assert.Equal((3, 4), RobertaTokenizer.LongestFirst(10, 10, 7));
    }

    [Fact]
    public void MissingTokenizerFilesAreBadInput()
    {
        using var dir = new TempDir();
        Assert.Throws<BadInputException>(() => RobertaTokenizer.Load(dir.Path));
    }
}
