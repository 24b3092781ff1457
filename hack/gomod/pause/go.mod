module corral.dev/hack/gomod/pause

go 1.25.0
