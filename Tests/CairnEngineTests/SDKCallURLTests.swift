@testable import CairnEngine
import Testing

/// The URL every call goes to: the function's step URL with the call's `fnId` and `stepId`.
@Suite struct SDKCallURLTests {
    @Test(arguments: [
        ("http://app:3000/api/inngest", "http://app:3000/api/inngest?fnId=shop-a&stepId=step"),
        ("http://app/api/inngest?fnId=old&stepId=step", "http://app/api/inngest?fnId=shop-a&stepId=step"),
        ("http://app/api/inngest?x=1&fnId=old&y=a%20b&stepId=s", "http://app/api/inngest?x=1&y=a%20b&fnId=shop-a&stepId=step"),
        ("https://app/api/inngest?", "https://app/api/inngest?fnId=shop-a&stepId=step"),
        ("http://app/api/inngest?fnIdentity=1#frag", "http://app/api/inngest?fnIdentity=1&fnId=shop-a&stepId=step#frag"),
    ])
    func setsTheFunctionAndStep(url: String, expected: String) {
        #expect(SDKCallRequest.callURL(url, functionID: "shop-a", stepID: "step") == expected)
    }

    @Test func encodesIdsThatAreNotURLSafe() {
        let url = SDKCallRequest.callURL("http://app/api", functionID: "app-fn ü/1", stepID: "a&b=c")
        #expect(url == "http://app/api?fnId=app-fn%20%C3%BC%2F1&stepId=a%26b%3Dc")
    }
}
