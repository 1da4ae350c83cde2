module example.com/pan-offline/examples-go

go 1.19
