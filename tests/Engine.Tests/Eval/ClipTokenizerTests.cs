using System.Text.Json;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>
/// CLIP's tokenizer against ids recorded by <c>data/reference/clip_tokenizer/make_clip_tokenizer_fixture.py</c>
/// (an independent Python implementation of OpenAI's simple_tokenizer.py on a synthetic 400-merge vocabulary).
/// </summary>
public sealed class ClipTokenizerTests
{
    private static string FixtureDir => Path.Combine(TestPaths.Data, "reference", "clip_tokenizer");

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Expected().Count; i++) data.Add(i);
        return data;
    }

    private static List<(string Text, int[] Ids)> Expected()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "expected.json")));
        return [.. doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("text").GetString()!, e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()))];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrickyStringsGiveTheRecordedIds(int index)
    {
        var (text, ids) = Expected()[index];
        var tok = ClipTokenizer.Load(FixtureDir);
        Assert.Equal(ids, tok.EncodeFramed(text));
    }

    [Fact]
    public void SpecialIdsComeFromTheVocabulary()
    {
        var tok = ClipTokenizer.Load(FixtureDir);
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(FixtureDir, "vocab.json")))!;
        Assert.Equal((vocab["<|startoftext|>"], vocab["<|endoftext|>"]), (tok.BosId, tok.EosId));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TokenizerJsonGivesTheSameIds(bool pairArrays)
    {
        string vocab = File.ReadAllText(Path.Combine(FixtureDir, "vocab.json"));
        var merges = File.ReadAllLines(Path.Combine(FixtureDir, "merges.txt")).Skip(1).Where(l => l.Length > 0).ToArray();
        object mergeList = pairArrays ? merges.Select(m => m.Split(' ')).ToArray() : merges;
        using var dir = new TempDir();
        string merged = JsonSerializer.Serialize(mergeList);
        File.WriteAllText(dir["tokenizer.json"],
            "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"end_of_word_suffix\": \"</w>\", \"vocab\": " + vocab + ", \"merges\": " + merged + "}}");
        var fromJson = ClipTokenizer.Load(dir.Path);
        var fromPair = ClipTokenizer.Load(FixtureDir);
        foreach (var (text, ids) in Expected())
        {
            Assert.Equal(ids, fromJson.EncodeFramed(text));
            Assert.Equal(fromPair.EncodeFramed(text), fromJson.EncodeFramed(text));
        }
    }

    [Fact]
    public void EncodePadsWithZeroAndTruncatesToTheContextWithEosLast()
    {
        var tok = ClipTokenizer.Load(FixtureDir);
        string longText = "a photo of a " + string.Concat(Enumerable.Repeat("very ", 100)) + "long prompt";
        var ids = tok.Encode(["a photo of a dog.", longText]);
        Assert.Equal(2 * ClipTokenizer.ContextLength, ids.Length);
        var first = ids.AsSpan(0, 77).ToArray();
        var framed = tok.EncodeFramed("a photo of a dog.");
        Assert.Equal(framed, first[..framed.Length]);
        Assert.All(first[framed.Length..], v => Assert.Equal(0, v));
        var second = ids.AsSpan(77, 77).ToArray();
        Assert.Equal(tok.BosId, second[0]);
        Assert.Equal(tok.EosId, second[76]);
        Assert.Equal(tok.EncodeContent(longText)[..75], second[1..76]);
        Assert.Equal([tok.BosId, tok.EosId], tok.EncodeFramed(""));
    }

    [Fact]
    public void CleanCollapsesWhitespaceDecodesEntitiesAndLowerCases()
    {
        Assert.Equal("a photo of the cat!", ClipTokenizer.Clean("  A\tPhoto \n\n of  THE cat!  "));
        Assert.Equal("a & b <c>", ClipTokenizer.Clean("A &amp;amp; B &lt;c&gt;"));
    }

    [Fact]
    public void MissingOrForeignFilesAreBadInput()
    {
        using var empty = new TempDir();
        Assert.Contains("no CLIP tokenizer files", Assert.Throws<BadInputException>(() => ClipTokenizer.Load(empty.Path)).Message);
        using var roberta = new TempDir();
        File.WriteAllText(roberta["vocab.json"], """{"<s>": 0, "a": 1, "b": 2, "ab": 3}""");
        File.WriteAllText(roberta["merges.txt"], "#version: 0.2\na b\n");
        Assert.Contains("no <|startoftext|> token", Assert.Throws<BadInputException>(() => ClipTokenizer.Load(roberta.Path)).Message);
        using var broken = new TempDir();
        File.WriteAllText(broken["tokenizer.json"], "{\"model\": {\"type\": \"WordPiece\"}}");
        Assert.Contains("not a BPE tokenizer.json", Assert.Throws<BadInputException>(() => ClipTokenizer.Load(broken.Path)).Message);
    }
}
