import Testing
import VMMSModel

@Suite struct VMNameRuleTests {
    @Test(arguments: [
        "a", "web01", "Web Server 2022", "db_primary", "build-agent.3", "0start", "_x",
        String(repeating: "x", count: 64), "a.b-c_d e",
    ])
    func acceptsASCIILettersDigitsSpaceDashUnderscoreAndDot(name: String) {
        #expect(VMNameRule.validate(name) == nil)
    }

    @Test(arguments: [
        ("", "empty"),
        (String(repeating: "x", count: 65), "longer than 64"),
        ("-x", "must not start with '-'"),
        (".hidden", "must not start with '.'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\'"),
        ("a<b", "'<'"),
        ("a&b", "'&'"),
        ("a'b", "'''"),
        ("a\"b", "'\"'"),
        ("tab\there", "U+0009"),
        ("new\nline", "U+000A"),
        ("nul\u{0}", "U+0000"),
        ("café", "'é'"),
        ("Δ", "'Δ'"),
        ("smile😀", "'😀'"),
        ("a:b", "':'"),
        ("nbsp\u{A0}x", "U+00A0"),
    ])
    func refusesOtherNamesSayingWhy(name: String, expectedFragment: String) throws {
        let message = try #require(VMNameRule.validate(name))
        #expect(message.contains(expectedFragment), "\(message)")
    }

    @Test func countsCharactersNotBytesAtTheLimit() {
        #expect(VMNameRule.validate(String(repeating: "a", count: 63) + "b") == nil)
        #expect(VMNameRule.validate(String(repeating: "a", count: 65)) != nil)
    }
}

@Suite struct XMLTextTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("", ""),
        ("a & b", "a &amp; b"),
        ("<tag>", "&lt;tag&gt;"),
        ("it's", "it&apos;s"),
        ("say \"hi\"", "say &quot;hi&quot;"),
        ("&amp;", "&amp;amp;"),
        ("ünïcode ✓", "ünïcode ✓"),
        ("]]>", "]]&gt;"),
    ])
    func escapesTheFiveSpecialCharacters(input: String, expected: String) {
        #expect(XMLText.escape(input) == expected)
    }
}
