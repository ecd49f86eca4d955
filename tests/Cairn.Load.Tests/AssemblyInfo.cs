// The runner tests measure time; running them beside each other on a 2-core machine would measure each other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
