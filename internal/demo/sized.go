package demo

import (
	"fmt"
	"os"

	"github.com/apptainer/sif/v2/pkg/sif"

	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// MakeSizedSIF writes a valid SIF image of about size bytes to path, for
// benchmarks and load tests: the busybox SIF's definition file and squashfs
// root partition (so inspection finds real metadata), plus a data partition
// of deterministic pseudo-random bytes filling the rest. The image is
// streamed to disk; memory use does not depend on size.
func MakeSizedSIF(baseSIF, path string, size int64) error {
	base, err := sif.LoadContainerFromPath(baseSIF, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		return fmt.Errorf("load %s: %w", baseSIF, err)
	}
	defer base.UnloadContainer()
	part, err := base.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return err
	}
	var inputs []sif.DescriptorInput
	if def, err := base.GetDescriptor(sif.WithDataType(sif.DataDeffile)); err == nil {
		di, err := sif.NewDescriptorInput(sif.DataDeffile, def.GetReader())
		if err != nil {
			return err
		}
		inputs = append(inputs, di)
	}
	root, err := sif.NewDescriptorInput(sif.DataPartition, part.GetReader(),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		return err
	}
	inputs = append(inputs, root)
	fill := size - part.Size() - 64*1024
	if fill > 0 {
		data, err := sif.NewDescriptorInput(sif.DataPartition, gitlabemu.GeneratedContent(1, path, fill),
			sif.OptPartitionMetadata(sif.FsRaw, sif.PartData, "amd64"))
		if err != nil {
			return err
		}
		inputs = append(inputs, data)
	}
	f, err := sif.CreateContainerAtPath(path, sif.OptCreateWithDescriptors(inputs...), sif.OptCreateDeterministic(),
		sif.OptCreateWithLaunchScript(LegacyHeader))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.UnloadContainer()
}
