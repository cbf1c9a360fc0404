import CairnCore
import Testing

@Suite struct URLRedactionTests {
    @Test(arguments: [
        ("http://127.0.0.1:8000/api/inngest", "http://127.0.0.1:8000/api/inngest"),
        ("https://user:secret@app.example.com/api/inngest", "https://REDACTED@app.example.com/api/inngest"),
        ("https://token@app.example.com", "https://REDACTED@app.example.com"),
        ("http://app/api/inngest?fnId=shop-a&stepId=step&token=s3cret", "http://app/api/inngest?fnId=shop-a&stepId=step&token=REDACTED"),
        ("http://app/api?s3cret", "http://app/api?REDACTED"),
        ("http://app/api?key=abc#frag", "http://app/api?key=REDACTED#frag"),
        ("http://a:b@app?x=1&&y=2", "http://REDACTED@app?x=REDACTED&&y=REDACTED"),
        ("not a url", "not a url"),
    ])
    func redactsCredentialsInAURL(url: String, shown: String) {
        #expect(URLRedaction.redact(url) == shown)
    }

    @Test func redactsEveryURLInAText() {
        let text = #"calling the app at https://u:pw@h/api?token=t1 failed: connect to "HTTP://x:y@h2:9/p?k=v" refused"#
        #expect(URLRedaction.redactingURLs(in: text)
            == #"calling the app at https://REDACTED@h/api?token=REDACTED failed: connect to "HTTP://REDACTED@h2:9/p?k=REDACTED" refused"#)
        #expect(URLRedaction.redactingURLs(in: "no urls here") == "no urls here")
    }

    @Test func redactsURLsInsideJSON() {
        let config: JSONValue = ["steps": ["step": ["runtime": ["url": "http://u:pw@app/api?fnId=f&key=k"]]], "retries": 3]
        #expect(URLRedaction.redactingURLs(in: config)
            == ["steps": ["step": ["runtime": ["url": "http://REDACTED@app/api?fnId=f&key=REDACTED"]]], "retries": 3])
    }
}
